"""The corpus: which excerpts exist, their fixed dev/test split, the render cache, and loading.

75 excerpts = 15 styles x 5 variants, ~20-28 s each; variants 0-2 are rendered by fluidsynth
with the FluidR3 GM soundfont, variants 3-4 by the numpy synthesiser. The split is fixed by name
(:func:`split_of`): per style one fluidsynth variant is ``dev``, and for two thirds of the styles
one numpy variant too (25 dev, 50 test). Trackers are tuned on ``dev`` only; ``test`` is held back
from every design decision.

Renders are cached under ``$DABFUSION_CACHE/beat_corpus`` (else ``~/.cache/dabfusion/beat_corpus``)
in a folder keyed by the corpus version, seed, rate and a hash of the composing, rendering and
checking code, so a change to any pattern rebuilds it. A build is deterministic: the same seed gives the same audio
and annotations. Each excerpt is grid-checked (:mod:`.gridcheck`) when it is built; one that fails
is recorded and left out of :func:`load_corpus`.

The *short corpus* (:func:`short_corpus`) is 8 excerpts of 10-15 s rendered once with fluidsynth
and committed as Ogg Vorbis under ``tests/data/beat_corpus`` (``python -m
dabfusion.testing.beat_corpus write-short``), so the test suite needs no fluidsynth.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .compose import STYLES, Composition, compose
from .gridcheck import check_excerpt

SR = 22050
SEED = 0
CORPUS_VERSION = 1
VARIANTS = 5
FLUID_VARIANTS = (0, 1, 2)          # the rest are rendered by the numpy synthesiser
SPLITS = ("dev", "test")
#: Tonal stem gain in the mix, per style (the "tonal" style buries the drums under pads).
TONAL_GAIN = {"tonal": 1.8}
#: Short corpus: (style, variant) pairs, composed at SHORT_SEED with 10-15 s durations.
SHORT_SET = (("house", 0), ("disco", 1), ("backbeat", 0), ("dnb", 1), ("trap", 2), ("waltz", 0),
             ("breakdown", 1), ("ramp", 0))
SHORT_SEED = 1000
SHORT_DIR = Path(__file__).resolve().parents[3] / "tests" / "data" / "beat_corpus"


@dataclass
class Excerpt:
    """One excerpt: audio and its exact annotation (seconds from the start of ``audio``)."""

    name: str
    style: str
    split: str
    source: str                  # "fluidsynth:FluidR3_GM" or "numpy"
    sr: int
    audio: np.ndarray            # float32 mono
    beats: np.ndarray
    downbeats: np.ndarray
    beats_per_bar: int
    tempo: float                 # nominal bpm (at the start; ramps change it)
    meta: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sr


def renderer_of(variant: int) -> str:
    return "fluidsynth" if variant in FLUID_VARIANTS else "numpy"


def split_of(style: str, variant: int) -> str:
    """Fixed split: the fluidsynth variant ``i % 3`` of the i-th style, and the numpy variant
    ``3 + i % 2`` of styles with ``i % 3 != 2``, are dev; everything else is test."""
    i = list(STYLES).index(style)
    if variant == i % 3 or (i % 3 != 2 and variant == 3 + i % 2):
        return "dev"
    return "test"


def excerpt_list() -> list[tuple[str, int]]:
    return [(st, v) for st in STYLES for v in range(VARIANTS)]


def cache_root() -> Path:
    base = os.environ.get("DABFUSION_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "dabfusion"
    return root / "beat_corpus"


def _source_hash() -> str:
    """Hash of what decides the audio and annotations: the composing, MIDI, rendering and
    checking modules, and this module's render settings (not the split: it is applied at load)."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("compose.py", "midi.py", "render.py", "gridcheck.py"):
        h.update((here / name).read_bytes())
    h.update(json.dumps([VARIANTS, FLUID_VARIANTS, TONAL_GAIN], sort_keys=True).encode())
    return h.hexdigest()[:12]


def cache_dir(seed: int = SEED, sr: int = SR) -> Path:
    return cache_root() / f"v{CORPUS_VERSION}_seed{seed}_sr{sr}_{_source_hash()}"


def _latency(cdir: Path, sr: int) -> dict:
    """fluidsynth's measured latency, measured once per cache folder."""
    path = cdir / "fluidsynth_latency.json"
    if path.is_file():
        return json.loads(path.read_text())
    from .render import measure_latency
    lat = measure_latency(sr)
    # the correction: median over kick and snare (the anchors nearly every excerpt has)
    lat["correction_s"] = float(np.median([lat["per_key"]["36"], lat["per_key"]["38"]]))
    cdir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(lat, indent=1))
    return lat


def render_composition(c: Composition, renderer: str, sr: int, latency_s: float = 0.0):
    """(audio, drums stem scaled like the mix, beats, downbeats, grid check) of ``c``."""
    from .render import mix, render_fluidsynth, render_numpy
    stems = render_fluidsynth(c, sr) if renderer == "fluidsynth" else render_numpy(c, sr)
    audio, scale = mix(stems, sr, tonal_gain=TONAL_GAIN.get(c.style, 1.0))
    drums = stems["drums"] * np.float32(scale)
    beats = c.beats + latency_s
    downbeats = c.downbeats + latency_s
    anchors = beats[c.anchor_beats()]
    check = check_excerpt(anchors, drums, audio, sr)
    return audio, drums, beats, downbeats, check


def _build_one(args) -> dict:
    style, variant, seed, sr, cdir, latency = args
    import soundfile as sf
    c = compose(style, variant, seed)
    renderer = renderer_of(variant)
    lat = latency if renderer == "fluidsynth" else 0.0
    audio, _, beats, downbeats, check = render_composition(c, renderer, sr, lat)
    sf.write(str(Path(cdir) / f"{c.name}.flac"), audio, sr, subtype="PCM_24")
    info = {"name": c.name, "style": style, "variant": variant, "split": split_of(style, variant),
            "source": "fluidsynth:FluidR3_GM" if renderer == "fluidsynth" else "numpy",
            "sr": sr, "tempo": round(c.bpm, 4), "beats_per_bar": c.beats_per_bar,
            "beats": [round(float(b), 6) for b in beats],
            "downbeats": [round(float(b), 6) for b in downbeats],
            "latency_correction_s": lat, "programs": {str(k): v for k, v in c.programs.items()},
            "meta": c.meta, "gridcheck": check}
    (Path(cdir) / f"{c.name}.json").write_text(json.dumps(info))
    return info


def build_corpus(seed: int = SEED, sr: int = SR, workers: int = 1, force: bool = False,
                 log=print) -> Path:
    """Render every missing excerpt into the cache folder; returns the folder."""
    cdir = cache_dir(seed, sr)
    cdir.mkdir(parents=True, exist_ok=True)
    todo = [(st, v) for st, v in excerpt_list()
            if force or not (cdir / f"{st}_{v}.json").is_file() or not (cdir / f"{st}_{v}.flac").is_file()]
    if not todo:
        return cdir
    from .render import fluidsynth_available
    need_fluid = any(renderer_of(v) == "fluidsynth" for _, v in todo)
    if need_fluid and not fluidsynth_available():
        raise RuntimeError("building the beat corpus needs fluidsynth and FluidR3_GM.sf2 "
                           "(apt-get install fluidsynth fluid-soundfont-gm)")
    latency = _latency(cdir, sr)["correction_s"] if need_fluid else 0.0
    log(f"beat corpus: rendering {len(todo)} excerpts into {cdir}")
    jobs = [(st, v, seed, sr, str(cdir), latency) for st, v in todo]
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            results = list(ex.map(_build_one, jobs))
    else:
        results = [_build_one(j) for j in jobs]
    bad = [r["name"] for r in results if not r["gridcheck"]["passed"]]
    if bad:
        log(f"beat corpus: grid check failed (left out): {', '.join(bad)}")
    return cdir


def _load_info(cdir: Path) -> list[dict]:
    infos = [json.loads(p.read_text()) for p in sorted(cdir.glob("*.json"))
             if p.name != "fluidsynth_latency.json"]
    for info in infos:   # the split is today's rule, not the one the cache was built under
        info["split"] = split_of(info["style"], int(info["variant"]))
    return infos


def corpus_report(seed: int = SEED, sr: int = SR) -> dict:
    """Grid-check results and latency of the cached corpus (builds it if needed)."""
    cdir = build_corpus(seed, sr)
    infos = _load_info(cdir)
    lat_path = cdir / "fluidsynth_latency.json"
    return {"latency": json.loads(lat_path.read_text()) if lat_path.is_file() else None,
            "excerpts": [{k: i[k] for k in ("name", "style", "split", "source", "tempo", "gridcheck")}
                         for i in infos]}


def _excerpt(info: dict, audio: np.ndarray) -> Excerpt:
    return Excerpt(name=info["name"], style=info["style"], split=info["split"], source=info["source"],
                   sr=int(info["sr"]), audio=audio.astype(np.float32),
                   beats=np.asarray(info["beats"], np.float64),
                   downbeats=np.asarray(info["downbeats"], np.float64),
                   beats_per_bar=int(info["beats_per_bar"]), tempo=float(info["tempo"]),
                   meta={**info.get("meta", {}), "gridcheck": info.get("gridcheck", {})})


def load_corpus(split: str = "all", styles=None, *, seed: int = SEED, sr: int = SR,
                workers: int = 1, include_failed: bool = False) -> list[Excerpt]:
    """The corpus's excerpts of ``split`` ("dev", "test" or "all") and ``styles`` (None = all),
    rendering whatever is missing from the cache first. Grid-check failures are left out."""
    import soundfile as sf
    if split not in ("dev", "test", "all"):
        raise ValueError(f"split must be dev, test or all, not {split!r}")
    unknown = set(styles or ()) - set(STYLES)
    if unknown:
        raise ValueError(f"unknown styles {sorted(unknown)}; known: {list(STYLES)}")
    cdir = build_corpus(seed, sr, workers=workers)
    out = []
    order = {name: i for i, name in enumerate(f"{st}_{v}" for st, v in excerpt_list())}
    for info in sorted(_load_info(cdir), key=lambda i: order.get(i["name"], 1 << 30)):
        if split != "all" and info["split"] != split:
            continue
        if styles and info["style"] not in styles:
            continue
        if not include_failed and not info["gridcheck"]["passed"]:
            continue
        audio, _ = sf.read(str(cdir / f"{info['name']}.flac"), dtype="float32")
        out.append(_excerpt(info, audio))
    return out


# --------------------------------------------------------------------------------------------
# the committed short corpus (test suite)
# --------------------------------------------------------------------------------------------

def write_short(out_dir: Path = SHORT_DIR, sr: int = SR, log=print) -> list[dict]:
    """Render the short corpus with fluidsynth and write it as Ogg Vorbis + annotations.json."""
    import soundfile as sf
    from .render import fluidsynth_version
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cdir = cache_dir(SHORT_SEED, sr)
    latency = _latency(cdir, sr)["correction_s"]
    infos = []
    for style, variant in SHORT_SET:
        c = compose(style, variant, SHORT_SEED, duration=(10.0, 15.0))
        audio, drums, beats, downbeats, check = render_composition(c, "fluidsynth", sr, latency)
        if not check["passed"]:
            raise RuntimeError(f"short corpus excerpt {c.name} fails the grid check: {check}")
        path = out_dir / f"{c.name}.ogg"
        sf.write(str(path), audio, sr, format="OGG", subtype="VORBIS", compression_level=0.55)
        decoded, _ = sf.read(str(path), dtype="float32")
        # the committed file must still carry its grid (decoder alignment, codec smearing)
        lag = _lag(audio, decoded, sr)
        recheck = check_excerpt(beats[c.anchor_beats()], drums, decoded, sr)
        info = {"name": c.name, "file": path.name, "style": style, "variant": variant,
                "seed": SHORT_SEED, "source": "fluidsynth:FluidR3_GM", "sr": sr,
                "tempo": round(c.bpm, 4), "beats_per_bar": c.beats_per_bar,
                "beats": [round(float(b), 6) for b in beats],
                "downbeats": [round(float(b), 6) for b in downbeats], "latency_correction_s": latency,
                "meta": c.meta, "gridcheck": check, "ogg_mix_within": recheck.get("mix_within"),
                "ogg_lag_samples": lag}
        infos.append(info)
        log(f"{c.name}: {len(audio) / sr:.1f} s, {path.stat().st_size // 1024} KiB, "
            f"grid {check['stem_within']:.2f} (stem) {recheck['mix_within']:.2f} (ogg mix), lag {lag}")
    (out_dir / "annotations.json").write_text(json.dumps(
        {"fluidsynth": fluidsynth_version(), "command": "python -m dabfusion.testing.beat_corpus write-short",
         "excerpts": infos}, indent=1))
    return infos


def _lag(ref: np.ndarray, other: np.ndarray, sr: int, max_lag: int = 64) -> int:
    """Samples by which ``other`` is late against ``ref`` (cross-correlation over 2 s of music)."""
    a = int(sr * 1.0)
    seg = other[a:a + 2 * sr].astype(np.float64)
    ref = ref.astype(np.float64)
    scores = [float(np.dot(seg, ref[a - k:a - k + len(seg)])) for k in range(-max_lag, max_lag + 1)]
    return int(np.argmax(scores)) - max_lag


def short_corpus(path: Path = SHORT_DIR) -> list[Excerpt]:
    """The committed short corpus (no fluidsynth needed): 8 excerpts of 10-15 s."""
    import soundfile as sf
    data = json.loads((Path(path) / "annotations.json").read_text())
    out = []
    for info in data["excerpts"]:
        audio, sr = sf.read(str(Path(path) / info["file"]), dtype="float32")
        info = {**info, "split": "short", "sr": sr}
        out.append(_excerpt(info, audio))
    return out


__all__ = ["Excerpt", "load_corpus", "short_corpus", "build_corpus", "split_of", "excerpt_list",
           "write_short", "corpus_report", "cache_dir", "SR", "SEED"]
