"""Train a music adapter (paper 3.2): a 2-layer MLP on a frozen encoder, genre-aware objective.

    python -m training.train_music_adapters --data DATA --branch clap \
        --clap-checkpoint ComfyUI/models/clap/music_audioset_epoch_15_esc_90.14.pt \
        --out ComfyUI/models/dabfusion/clap_adapter.safetensors

DATA has AIST++'s layout (``DATA/music/m{GENRE}{k}.wav``; SynthDance works). The genre of a
track comes from its name. Tracks are split by the data set's manifest or AIST++'s test tracks
(``--split``); adapters train on random windows of the train tracks and are evaluated on the
held-out test tracks, which they never heard. Frozen-encoder embeddings are cached under
``--cache-dir`` (default ``DATA/.cache/music_adapters``), keyed by the encoder's weight
fingerprint, the track file and the window times.

Branches: ``clap`` and ``wav2clip`` need their official weight files (``--random-weights`` builds
them untrained, for smoke tests only: the saved config says so); ``mel`` is the weight-free
librosa stand-in (:mod:`dabfusion.music.mel_branch`) that works anywhere. The saved config
records which encoder (kind, weight fingerprint, file) the adapter was trained on, and the
accuracies it reached.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BRANCHES = ("clap", "wav2clip", "mel")


def _log(msg: str) -> None:
    print(msg, flush=True)


def build_encoder(branch: str, *, checkpoint: str | None = None, model_dirs: list[str] = (),
                  random_weights: bool = False, clap_amodel: str = "HTSAT-tiny", seed: int = 0,
                  device: str = "cpu") -> Any:
    """The frozen encoder for a branch (loaded from its official file, or weight-free for mel)."""
    if branch == "mel":
        from dabfusion.music.mel_branch import MelStatsEncoder

        return MelStatsEncoder()
    import torch

    if branch == "clap":
        from dabfusion.music.clap_branch import ClapAudioEncoder, load_clap_audio

        if random_weights:
            torch.manual_seed(seed)
            return ClapAudioEncoder(clap_amodel).to(device)
        return load_clap_audio(checkpoint, model_dirs, device=device)
    if branch == "wav2clip":
        from dabfusion.music.wav2clip_branch import Wav2ClipEncoder, load_wav2clip

        if random_weights:
            torch.manual_seed(seed)
            return Wav2ClipEncoder().to(device)
        return load_wav2clip(checkpoint, model_dirs, device=device)
    raise SystemExit(f"--branch must be one of {BRANCHES}")


def find_tracks(data: Path) -> dict[str, Path]:
    """``{"mBR0": path}`` for every AIST++-named music file under DATA/music."""
    from dabfusion.data.aist_names import parse_music_name
    from dabfusion.data.layout import AUDIO_EXTS
    from dabfusion.errors import DataError

    mdir = data / "music"
    if not mdir.is_dir():
        raise DataError(f"{data} has no music/ folder (expected AIST++'s layout: "
                        f"{data}/music/mBR0.wav ...).")
    tracks: dict[str, Path] = {}
    for f in sorted(mdir.iterdir()):
        if f.suffix.lower() not in AUDIO_EXTS or f.name.startswith("."):
            continue
        try:
            name = parse_music_name(f).stem
        except DataError:
            _log(f"skipping {f.name}: not an AIST++ music name (m{{GENRE}}{{k}})")
            continue
        tracks.setdefault(name, f)
    if not tracks:
        raise DataError(f"No AIST++-named music files (e.g. mBR0.wav) in {mdir}.")
    return tracks


def window_plan(duration: float, window: float, count: int, rng: np.random.Generator | None) -> list[float]:
    """Window starts: random (training) or evenly spaced (evaluation, ``rng=None``)."""
    room = max(duration - window, 0.0)
    if room == 0.0:
        return [0.0]
    if rng is None:
        return [float(s) for s in np.linspace(0.0, room, count)]
    return [float(s) for s in np.sort(rng.uniform(0.0, room, count))]


def _file_id(path: Path) -> str:
    st = path.stat()
    return f"{path.name}:{st.st_size}:{int(st.st_mtime)}"


def embed_windows(encoder: Any, wave: np.ndarray, sr: int, starts: list[float], window: float,
                  cache_dir: Path | None, track_id: str) -> np.ndarray:
    """Frozen embeddings [len(starts), dim] of the windows, from the cache when possible."""
    ident = encoder.identity()
    key = hashlib.sha256(json.dumps([ident.get("kind"), ident.get("fingerprint"), track_id, sr,
                                     [round(s, 4) for s in starts], window]).encode()).hexdigest()[:32]
    path = cache_dir / f"{key}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            arr = np.load(path, allow_pickle=False)
            if arr.shape == (len(starts), encoder.dim):
                return arr
        except (OSError, ValueError):
            pass
    n = int(round(window * sr))
    clips = [wave[int(round(s * sr)): int(round(s * sr)) + n] for s in starts]
    arr = np.asarray(encoder.embed_clips(clips), np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npy")
        np.save(tmp, arr)
        tmp.replace(path)
    return arr


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="data set root with music/m{GENRE}{k}.wav")
    p.add_argument("--branch", choices=BRANCHES + ("librosa",), default="clap",
                   help="clap | wav2clip | mel (alias librosa: the weight-free stand-in)")
    p.add_argument("--clap-checkpoint", help="LAION-CLAP .pt (path or name in --model-dir)")
    p.add_argument("--wav2clip-checkpoint", help="Wav2CLIP.pt (path or name in --model-dir)")
    p.add_argument("--model-dir", action="append", default=[],
                   help="folder to search for the checkpoint (repeatable), e.g. ComfyUI/models/clap")
    p.add_argument("--random-weights", action="store_true",
                   help="untrained clap/wav2clip encoder (smoke tests only; recorded in the config)")
    p.add_argument("--clap-amodel", default="HTSAT-tiny", help="audio model for --random-weights clap")
    p.add_argument("--out", required=True, help="output .safetensors (a .json is written beside it)")
    p.add_argument("--objective", choices=("prototype", "classify"), default="prototype")
    p.add_argument("--epochs", type=int, default=100, help="paper: 100")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, default=512, help="paper: 512")
    p.add_argument("--out-dim", type=int, default=512)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window-seconds", type=float, default=10.0, help="audio per example (CLAP: 10 s)")
    p.add_argument("--windows-per-track", type=int, default=16)
    p.add_argument("--eval-windows", type=int, default=8, help="evenly spaced windows per test track")
    p.add_argument("--split", default="auto",
                   help="'auto' (manifest, else AIST++ paper split), 'paper', a track list or a file")
    p.add_argument("--cache-dir", help="frozen-embedding cache (default DATA/.cache/music_adapters)")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0: torch's default; 1 is often fastest on a busy machine)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate on held-out tracks, save; returns the result summary (also printed)."""
    args = parse_args(argv)
    if args.branch == "librosa":
        args.branch = "mel"
    from dabfusion.data.aist_names import GENRE_CODES, parse_music_name
    from dabfusion.data.layout import load_manifest
    from dabfusion.data.music_bank import load_track
    from dabfusion.data.splits import resolve_split
    from dabfusion.errors import DataError
    from dabfusion.music.adapters import AdapterConfig, evaluate, train_adapter

    t_start = time.time()
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    data = Path(args.data).expanduser()
    tracks = find_tracks(data)
    manifest = load_manifest(data)
    split = resolve_split(args.split, manifest=manifest, manifest_path=data / "synthdance.json")
    parts: dict[str, list[str]] = {"train": [], "test": []}
    for name in tracks:
        part = split.part_of(name)
        if part is not None:
            parts[part].append(name)
    if not parts["train"]:
        raise DataError(f"The split '{split.source}' leaves no training tracks in {data}/music.")
    ckpt = args.clap_checkpoint if args.branch == "clap" else args.wav2clip_checkpoint
    encoder = build_encoder(args.branch, checkpoint=ckpt, model_dirs=args.model_dir,
                            random_weights=args.random_weights, clap_amodel=args.clap_amodel,
                            seed=args.seed, device=args.device)
    ident = encoder.identity()
    if ident.get("random_weights"):
        _log(f"NOTE: the {args.branch} encoder has RANDOM weights (smoke test); the saved config "
             f"records random_weights=true.")
    genres_present = sorted({parse_music_name(n).genre for n in parts["train"]},
                            key=GENRE_CODES.index)
    label = {g: i for i, g in enumerate(genres_present)}
    cache = None if args.no_cache else Path(args.cache_dir or data / ".cache" / "music_adapters")
    rng = np.random.default_rng(args.seed)
    sr = int(encoder.sample_rate)

    def collect(names: list[str], train: bool):
        xs, ys, groups = [], [], []
        for name in names:
            genre = parse_music_name(name).genre
            if genre not in label:
                _log(f"skipping test track {name}: genre {genre} has no training track")
                continue
            wave = load_track(tracks[name], sr)
            starts = window_plan(len(wave) / sr, args.window_seconds,
                                 args.windows_per_track if train else args.eval_windows,
                                 rng if train else None)
            emb = embed_windows(encoder, wave, sr, starts, args.window_seconds, cache,
                                f"{_file_id(tracks[name])}")
            xs.append(emb)
            ys += [label[genre]] * len(emb)
            groups += [name] * len(emb)
        if not xs:
            return np.zeros((0, encoder.dim), np.float32), np.zeros(0, np.int64), []
        return np.concatenate(xs), np.asarray(ys, np.int64), groups

    _log(f"{args.branch}: {len(parts['train'])} train tracks, {len(parts['test'])} held-out tracks, "
         f"{len(genres_present)} genres; embedding windows of {args.window_seconds:g} s ...")
    x_tr, y_tr, g_tr = collect(sorted(parts["train"]), True)
    x_te, y_te, g_te = collect(sorted(parts["test"]), False)
    _log(f"frozen embeddings: train {x_tr.shape}, test {x_te.shape} ({time.time() - t_start:.1f} s)")

    config = AdapterConfig(
        branch=args.branch, in_dim=int(encoder.dim), hidden=args.hidden, out_dim=args.out_dim,
        dropout=args.dropout, objective=args.objective, genres=list(genres_present),
        encoder=ident, window_seconds=args.window_seconds)
    model = train_adapter(x_tr, y_tr, config, epochs=args.epochs, lr=args.lr,
                          batch_size=args.batch_size, seed=args.seed, log=_log)
    train_res = evaluate(model, x_tr, y_tr, g_tr)
    test_res = evaluate(model, x_te, y_te, g_te) if len(y_te) else {}
    chance = 1.0 / len(genres_present)
    result = {
        "branch": args.branch, "encoder": ident, "objective": args.objective,
        "train_tracks": sorted(parts["train"]), "test_tracks": sorted(set(g_te)),
        "genres": genres_present, "chance": chance,
        "train_window_accuracy": train_res["window_accuracy"],
        "test_window_accuracy": test_res.get("window_accuracy"),
        "test_track_accuracy": test_res.get("track_accuracy"),
        "test_predictions": test_res.get("track_predictions"),
        "epochs": args.epochs, "seed": args.seed, "data": str(data), "split": split.source,
        "seconds": round(time.time() - t_start, 1),
    }
    model.config.training = {k: v for k, v in result.items() if k not in ("encoder",)}
    out = model.save(args.out)
    result["out"] = str(out)
    result["sha256"] = model.sha256()
    if test_res:
        _log(f"held-out genre accuracy ({len(set(g_te))} tracks never seen in training): "
             f"windows {test_res['window_accuracy']:.3f}, tracks {test_res['track_accuracy']:.3f} "
             f"(chance {chance:.3f}); train windows {train_res['window_accuracy']:.3f}")
    else:
        _log("no held-out tracks with a trained genre: accuracy not measured")
    _log(f"saved {out} and {out.with_suffix('.json')}")
    return result


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - user-facing errors without a traceback
        from dabfusion.errors import DabFusionError

        if isinstance(e, DabFusionError):
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        raise
