"""Generate the test split's videos from their first frames and music, with a cache on disk.

This is the generation half of the evaluation (the paper's protocol, section 4.3: "we use the
music and the first frame from the test set"):

- :class:`TestSet`: the test part of an AIST++-layout folder (split by music track), its frames
  decoded once into the shared frame cache at the model's fps and image size, and its music;
  :meth:`TestSet.clips` picks up to ``limit`` videos long enough for the longest clip, spread
  round-robin over the tracks (so over genres), each time from the camera used least so far, so
  that small subsets still fill the per-genre and per-camera tables.
- :class:`EvalModels`: the pipeline of the diffusion model (and of the ablation model trained
  without beat features, on the same flow AE), each with the music encoder its checkpoint's
  ``music_spec`` describes; from a model folder (bundle, e.g. the built-in demo model) or from
  separate checkpoints.
- :func:`generate_video`: one clip = the reference frame + ``n`` generated frames, through the
  model's :class:`dabfusion.pipeline.DabFusionPipeline`.
- :class:`VideoCache`: generated clips stored as ``.npy`` under a key that hashes everything that
  decides the pixels (weights, music spec, video, length, fps, sampler, steps, guidance, seed,
  overlap), so re-running the evaluation (e.g. with a new metric's weights) re-uses them.
- :func:`generate_all`: every clip for every model and length. The seed of a clip is a function
  of the base seed and the video name only, so the two models of the beat ablation see the same
  noise, and a clip of 40 frames is the exact prefix of the clip of 80 frames from the same seed
  whenever no later window reaches into it (:func:`prefix_is_exact`) - then only the longest
  clip is sampled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError, ModelFileError

log = logging.getLogger(__name__)
AUDIO_SAMPLE_RATE = 22050
DEFAULT_FPS = 30.0


# ------------------------------------------------------------------------------------ test videos


@dataclass
class TestClip:
    """One test video: its names and its ground-truth frames (uint8 ``[N, S, S, 3]``, memory-mapped)."""

    stem: str
    track: str
    genre: str
    camera: str
    dancer: str
    frames: np.ndarray

    @property
    def reference(self) -> np.ndarray:
        return np.asarray(self.frames[0])


def round_robin(groups: Iterable[Sequence[Any]]) -> list[Any]:
    """``[[a1, a2], [b1], [c1, c2, c3]] -> [a1, b1, c1, a2, c2, c3]``."""
    lists = [list(g) for g in groups]
    out: list[Any] = []
    i = 0
    while any(i < len(g) for g in lists):
        out.extend(g[i] for g in lists if i < len(g))
        i += 1
    return out


class TestSet:
    """The test videos of an AIST++-layout folder, their cached frames and their music."""

    def __init__(self, root: str | os.PathLike, *, fps: float, size: int, split: Any = "auto",
                 cache_dir: str | os.PathLike | None = None, sample_rate: int = AUDIO_SAMPLE_RATE) -> None:
        from ..data.frame_cache import FrameCache, default_cache_dir
        from ..data.layout import scan_dataset
        from ..data.splits import resolve_split, select_part

        self.root = Path(root).expanduser()
        layout = scan_dataset(self.root)
        self.split = resolve_split(split, manifest=layout.manifest, manifest_path=layout.manifest_path)
        self.records = select_part(layout.videos, "test", self.split, key=lambda r: r.name,
                                   what=f"the data set {self.root}")
        if not self.records:
            raise DataError(f"The data set {self.root} has no test videos under the split {self.split.source!r}.")
        self.fps, self.size, self.sample_rate = float(fps), int(size), int(sample_rate)
        self.cache = FrameCache(cache_dir if cache_dir is not None else default_cache_dir(self.root),
                                fps=self.fps, size=self.size)
        self._tracks: dict[str, np.ndarray] = {}
        self._beats: dict[str, np.ndarray] = {}

    def order(self) -> list[Any]:
        """Records round-robin over tracks; each track's next video is one of the cameras used least so far."""
        by_track: dict[str, list[Any]] = {}
        for r in sorted(self.records, key=lambda r: r.name.stem):
            by_track.setdefault(r.name.music, []).append(r)
        used: dict[int, int] = {}
        out: list[Any] = []
        while any(by_track.values()):
            for track in sorted(by_track):
                recs = by_track[track]
                if not recs:
                    continue
                r = min(recs, key=lambda r: (used.get(r.name.camera or 0, 0), r.name.camera or 0, r.name.stem))
                recs.remove(r)
                used[r.name.camera or 0] = used.get(r.name.camera or 0, 0) + 1
                out.append(r)
        return out

    def clips(self, limit: int | None, min_frames: int, *, workers: int | None = None,
              progress: bool = False) -> list[TestClip]:
        """Up to ``limit`` test clips (all with ``None``) with at least ``min_frames`` frames."""
        chosen: list[TestClip] = []
        order = self.order()
        want = len(order) if not limit or limit <= 0 else int(limit)
        i = 0
        while i < len(order) and len(chosen) < want:
            batch = order[i:i + max(4, want - len(chosen))]
            i += len(batch)
            entries = {e.source: e for e in self.cache.build([r.path for r in batch], workers=workers,
                                                              progress=progress, on_error="skip")}
            for r in batch:
                e = entries.get(r.path)
                if e is None or e.n_frames < min_frames or len(chosen) >= want:
                    continue
                n = r.name
                chosen.append(TestClip(n.stem, n.music, n.genre, f"c{n.camera:02d}" if n.camera else "cAll",
                                       f"d{n.dancer:02d}", self.cache.frames(e)))
        if not chosen:
            raise DataError(f"No test video of {self.root} has {min_frames} frames at {self.fps:g} fps "
                            f"({min_frames / self.fps:.1f} s); ask for fewer frames.")
        return chosen

    def music_path(self, track: str) -> Path:
        for r in self.records:
            if r.name.music == track:
                return r.music_path
        raise DataError(f"No test video of {self.root} uses the track {track}.")

    def wave(self, track: str) -> np.ndarray:
        """The whole track, mono float32 ``[S]`` at :attr:`sample_rate` (time 0 = the video's frame 0)."""
        if track not in self._tracks:
            from ..data.music_bank import load_track

            self._tracks[track] = load_track(self.music_path(track), self.sample_rate)
        return self._tracks[track]

    def beat_times(self, track: str) -> np.ndarray:
        """librosa's beats (s) of the whole track, for 2D-MM Align (context helps the tracker)."""
        if track not in self._beats:
            from ..metrics.mm_align import music_beat_times

            self._beats[track] = music_beat_times(self.wave(track), self.sample_rate)
        return self._beats[track]


# ------------------------------------------------------------------------------------ models


@dataclass
class EvalModel:
    """One diffusion model, as the pipeline that generates with it."""

    name: str
    pipeline: Any          # dabfusion.pipeline.DabFusionPipeline
    identity: str          # hash of the weights + spec, for the video cache
    path: str

    @property
    def uses_beats(self) -> bool:
        return bool(self.pipeline.config.uses_beats)

    @property
    def window(self) -> int:
        return self.pipeline.window


@dataclass
class EvalModels:
    """The main model (and the ablation) on one flow AE."""

    models: dict[str, EvalModel]
    fps: float
    description: str = ""

    @property
    def main(self) -> Any:
        return self.models["main"].pipeline

    @property
    def image_size(self) -> int:
        return self.main.image_size

    @property
    def defaults(self) -> dict:
        return self.main.defaults


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def load_models(*, model_dir: str | os.PathLike | None = None, flow_ae: str | os.PathLike | None = None,
                diffusion: str | os.PathLike | None = None, ablation: str | os.PathLike | None = None,
                wav2clip: str | os.PathLike | None = None, clap: str | os.PathLike | None = None,
                adapters: Mapping[str, str | os.PathLike] | None = None, fps: float | None = None,
                device: str | torch.device = "cpu") -> EvalModels:
    """The main pipeline and the ablation's (same flow AE), each with the music encoder of its ``music_spec``.

    Either ``model_dir`` (a bundle folder; ``None`` with no checkpoints = the built-in demo model)
    or ``flow_ae`` + ``diffusion`` checkpoints. Frozen music encoders come from ``wav2clip`` /
    ``clap`` (paths), adapters from the bundle or ``adapters`` (branch -> path).
    """
    from ..diffusion.checkpoint import flow_ae_identity
    from ..model_bundle import BundleFiles, demo_files, find_bundle_files, separate_files
    from ..music.encoder import spec_hash
    from ..pipeline import DabFusionPipeline

    if model_dir is not None and (flow_ae is not None or diffusion is not None):
        raise ModelFileError("Give either a model folder (--model) or --flow-ae and --diffusion, not both.")
    if model_dir is None and (flow_ae is None) != (diffusion is None):
        raise ModelFileError("Both --flow-ae and --diffusion are needed (or a model folder with --model).")
    if model_dir is not None:
        files = find_bundle_files(model_dir)
    elif flow_ae is not None:
        files = separate_files(flow_ae, diffusion)
    else:
        files = demo_files()
    encoders = {**files.encoders, **({"wav2clip": str(wav2clip)} if wav2clip else {}),
                **({"clap": str(clap)} if clap else {})}
    given = {k: Path(v).expanduser() for k, v in (adapters or {}).items()}  # explicit adapters win
    files = BundleFiles(files.root, files.flow_ae, files.diffusion, {**files.adapters, **given}, encoders,
                        files.manifest)
    main = DabFusionPipeline.from_files(files, device=device, fps=fps)
    weights = flow_ae_identity(main.flow_ae)["weights_sha256"]
    models: dict[str, EvalModel] = {}
    for key, path in (("main", files.diffusion), ("ablation", ablation)):
        if path is None:
            continue
        pipe = main if key == "main" else main.with_diffusion(path)
        ident = hashlib.sha256(f"{file_sha256(path)}|{weights}|{spec_hash(pipe.music.spec)}".encode()).hexdigest()
        models[key] = EvalModel(key, pipe, ident, str(path))
    m = models["main"]
    desc = (f"{files.root.name if model_dir is not None else Path(files.diffusion).name}: {main.image_size}x"
            f"{main.image_size} frames, windows of {m.window} frames, music branches "
            f"{[b['name'] for b in main.music.spec['branches']]}, beat features {'on' if m.uses_beats else 'off'}")
    return EvalModels(models, main.fps, desc)


# ------------------------------------------------------------------------------------ generation


def plan(length: int, window: int, overlap: int | None) -> tuple[list[int], int]:
    """A frame-time model's windows (the only kind whose short clips can be prefixes of long ones)."""
    from ..diffusion import default_overlap, plan_windows

    k = int(overlap if overlap is not None else default_overlap(int(window), beat_time=False))
    return plan_windows(int(length), int(window), k), k


def prefix_is_exact(short: int, long: int, window: int, overlap: int | None) -> bool:
    """Is the ``short``-frame clip the first frames of the ``long`` one (same model and seed)?

    Windows are sampled in order from one generator and each depends only on earlier ones, so
    the long clip's windows that the short clip also has are identical; frames before the next
    window's start are never touched again.
    """
    if short > long:
        return False
    s_starts, _ = plan(short, window, overlap)
    l_starts, _ = plan(long, window, overlap)
    if l_starts[:len(s_starts)] != s_starts:
        return False
    return all(s >= short for s in l_starts[len(s_starts):])


def seed_for(stem: str, base: int) -> int:
    """A clip's seed: a function of the base seed and the video name only."""
    return int(hashlib.sha256(f"{int(base)}:{stem}".encode()).hexdigest()[:15], 16)


@torch.no_grad()
def generate_video(model: EvalModel, reference: np.ndarray, wave: np.ndarray, sample_rate: int, *, fps: float,
                   length: int, settings: Any) -> np.ndarray:
    """``length`` frames (frame 0 = the reference re-drawn, then the generated ones), uint8 ``[L, S, S, 3]``."""
    pipe = model.pipeline
    ref = pipe.encode_reference(np.asarray(reference, dtype=np.uint8))
    flows = pipe.sample_flows(ref, pipe.encode_music(wave, sample_rate), n_frames=int(length), fps=fps,
                              settings=settings)
    return pipe.render(ref, flows)


class VideoCache:
    """Generated clips as ``<key>.npy`` (+ ``<key>.json`` describing them) in one folder."""

    def __init__(self, root: str | os.PathLike | None) -> None:
        self.root = Path(root).expanduser() if root is not None else None
        self.hits = 0

    @staticmethod
    def key(fields: Mapping[str, Any]) -> str:
        return hashlib.sha256(json.dumps(dict(fields), sort_keys=True, default=str).encode()).hexdigest()[:24]

    def load(self, key: str, length: int, size: int) -> np.ndarray | None:
        if self.root is None:
            return None
        p = self.root / f"{key}.npy"
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if arr.dtype != np.uint8 or arr.shape != (length, size, size, 3):
            return None
        self.hits += 1
        return arr

    def save(self, key: str, frames: np.ndarray, meta: Mapping[str, Any]) -> None:
        if self.root is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.{os.getpid()}.npy"
        np.save(tmp, np.ascontiguousarray(frames), allow_pickle=False)
        os.replace(tmp, self.root / f"{key}.npy")
        (self.root / f"{key}.json").write_text(json.dumps(dict(meta), indent=1, sort_keys=True, default=str) + "\n")


@dataclass
class Generated:
    """Clips by (model key, generated frames) and video stem, and the seconds spent sampling."""

    videos: dict[tuple[str, int], dict[str, np.ndarray]]
    seconds: dict[tuple[str, int], float]
    sampled: int = 0
    cached: int = 0


def generate_all(models: EvalModels, test: TestSet, clips: Sequence[TestClip], frames: Sequence[int],
                 settings: Any, cache: VideoCache, *,
                 progress: Callable[[str], Any] | None = None) -> Generated:
    """Every clip (reference + ``n`` generated frames for each ``n`` in ``frames``) for every model."""
    lengths = sorted({int(n) + 1 for n in frames})
    out = Generated({}, {})
    for mkey, model in models.models.items():
        for clip in clips:
            done: dict[int, np.ndarray] = {}
            for length in sorted(lengths, reverse=True):
                # beat-time models denoise a clip's windows together: a shorter clip is not a prefix
                src = None if model.pipeline.config.in_beat_time else next(
                    (ln for ln in done if prefix_is_exact(length, ln, model.window, settings.overlap)), None)
                if src is not None:
                    done[length] = done[src][:length]
                    continue
                fields = {"model": model.identity, "video": clip.stem, "length": length, "fps": models.fps,
                          "size": models.image_size, "sampler": settings.sampler, "steps": settings.n_steps,
                          "guidance": settings.guidance, "seed": seed_for(clip.stem, settings.seed),
                          "overlap": settings.overlap, "audio_sr": test.sample_rate}
                key = cache.key(fields)
                t0 = time.perf_counter()
                video = cache.load(key, length, models.image_size)
                if video is None:
                    video = generate_video(model, clip.reference, test.wave(clip.track), test.sample_rate,
                                           fps=models.fps, length=length,
                                           settings=replace(settings, seed=seed_for(clip.stem, settings.seed)))
                    cache.save(key, video, {**fields, "model_path": model.path, "track": clip.track})
                    out.sampled += 1
                    dt = time.perf_counter() - t0
                    if progress is not None:
                        progress(f"generated {clip.stem} ({mkey}, {length - 1} frames) in {dt:.1f} s")
                else:
                    out.cached += 1
                    dt = 0.0
                done[length] = video
                out.seconds[(mkey, length - 1)] = out.seconds.get((mkey, length - 1), 0.0) + dt
            for length, video in done.items():
                out.videos.setdefault((mkey, length - 1), {})[clip.stem] = video
    return out


def estimate_unet_calls(frames: Sequence[int], window: int, overlap: int | None, steps: int, guidance: float,
                        n_models: int, n_clips: int) -> int:
    """U-Net evaluations (batch-1 equivalents) the generation will take, for a time estimate."""
    lengths = sorted({int(n) + 1 for n in frames}, reverse=True)
    sampled = [lengths[0]] + [ln for ln in lengths[1:] if not prefix_is_exact(ln, lengths[0], window, overlap)]
    windows = sum(len(plan(ln, window, overlap)[0]) for ln in sampled)
    return windows * steps * (2 if guidance != 1.0 else 1) * n_models * n_clips


def describe_windows(length: int, window: int, overlap: int | None) -> str:
    starts, k = plan(length, window, overlap)
    return f"{len(starts)} windows of {window} frames (overlap {k})"


__all__ = ["EvalModel", "EvalModels", "Generated", "TestClip", "TestSet", "VideoCache",
           "describe_windows", "estimate_unet_calls", "generate_all", "generate_video", "load_models",
           "prefix_is_exact", "round_robin", "seed_for"]
