"""Training data for the flow diffusion: flow-AE targets computed once, music tables, windows.

Targets. Running the flow AE inside the training loop would cost more than the U-Net step, so
:func:`build_flow_targets` runs it once per video and stores, on disk:

- references every ``ref_hop`` frames (``r = 0, ref_hop, 2 ref_hop, ...``), their latents
  ``z_r`` (float16 ``[R, C, h, w]``), and
- the flow + occlusion from each reference to each of the ``ref_span`` frames that follow it
  (float16 ``[R, S, 3, h, w]``, raw flow AE units; model-space scaling happens at load time so
  ``flow_scale`` can change without recomputing).

With ``ref_span = n_frames`` this is exactly "the flow from frame 0 of each window to every frame
of it". A longer span (the scripts use ``ref_hop = ref_span = 2 * n_frames``: the flow AE runs
once per frame) also holds windows that start *after* their reference: a continuation window of
a long clip generates flows from the clip's original reference to frames far from it
(:mod:`.long_video`), and training must show such windows.
Files are keyed by the flow AE's weight hash, the frame cache entry (source file, size, mtime,
fps, frame size) and the span settings, so a new flow AE or new frames never reuse stale targets.

Music. :func:`build_music_table` calls the music encoder once per (track, window start) on the
``start_hop`` grid - exactly the call the sampler makes for a window at inference - and stores
global vectors ``[S, D]`` and frame features ``[S, N, F]``, keyed by the encoder spec hash, the
track's audio hash, fps and N.

Windows. :class:`FlowWindowDataset` draws, per item and epoch (a pure function of seed, epoch,
index, so a resume is exact): the window offset after its reference (0 with probability
``p_first``: a first window, whose frame 0 is then exactly the identity), the known prefix
length (with probability ``p_known``: 1 frame for a first window - the reference itself - else
1..``max_known``), and the classifier-free guidance drop.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .schedule import identity_frame, to_model_space

log = logging.getLogger(__name__)
TARGETS_VERSION = 1
MUSIC_VERSION = 1


def _sha(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def _save_npy_atomic(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class TargetSpec:
    """Which flows are stored: references every ``ref_hop`` frames, ``ref_span`` frames each."""

    n_frames: int
    ref_hop: int
    ref_span: int
    start_hop: int = 2

    def __post_init__(self) -> None:
        if self.ref_span < self.n_frames:
            raise ValueError(f"ref_span ({self.ref_span}) must be >= n_frames ({self.n_frames})")
        if self.ref_hop < 1 or self.start_hop < 1 or self.ref_hop % self.start_hop:
            raise ValueError(f"ref_hop ({self.ref_hop}) must be a positive multiple of start_hop ({self.start_hop})")

    @classmethod
    def default(cls, n_frames: int) -> "TargetSpec":
        return cls(n_frames=n_frames, ref_hop=2 * n_frames, ref_span=2 * n_frames, start_hop=2)

    def refs(self, video_frames: int) -> list[int]:
        last = video_frames - self.ref_span
        return list(range(0, last + 1, self.ref_hop)) if last >= 0 else []

    def offsets(self) -> list[int]:
        return list(range(0, self.ref_span - self.n_frames + 1, self.start_hop))


@dataclass
class VideoTargets:
    stem: str
    track: str
    n_frames: int          # frames of the video in the frame cache
    refs: list[int]
    flows_file: Path       # float16 [R, S, 3, h, w]
    z_file: Path           # float16 [R, C, h, w]
    record_index: int      # index into the AISTVideos' .videos


class FlowTargets:
    """Per-video target arrays on disk (memory-mapped lazily; picklable for DataLoader workers)."""

    def __init__(self, videos: list[VideoTargets], spec: TargetSpec, identity: dict, directory: Path) -> None:
        self.videos, self.spec, self.identity, self.directory = videos, spec, identity, directory
        self._open: dict[Path, np.ndarray] = {}

    def array(self, path: Path) -> np.ndarray:
        arr = self._open.get(path)
        if arr is None:
            arr = self._open[path] = np.load(path, mmap_mode="r", allow_pickle=False)
        return arr

    def __getstate__(self) -> dict:
        d = self.__dict__.copy()
        d["_open"] = {}
        return d

    def flow_statistics(self, max_videos: int = 32, quantile: float = 0.999) -> dict[str, float]:
        """|flow| statistics (normalised units) over a sample of the targets, for ``flow_scale``."""
        vals = []
        for v in self.videos[:: max(1, len(self.videos) // max_videos)]:
            f = np.asarray(self.array(v.flows_file)[:, :, :2], dtype=np.float32)
            vals.append(np.abs(f).reshape(-1)[:: max(1, f.size // 200_000)])
        a = np.concatenate(vals) if vals else np.zeros(1, np.float32)
        return {"abs_mean": float(a.mean()), "abs_std": float(a.std()),
                f"abs_q{quantile}": float(np.quantile(a, quantile)), "abs_max": float(a.max())}


def targets_directory(cache_root: str | os.PathLike, identity: dict, spec: TargetSpec) -> Path:
    key = _sha({"v": TARGETS_VERSION, "flow_ae": identity["weights_sha256"], "spec": asdict(spec)}, 12)
    return Path(cache_root) / f"flow_targets_v{TARGETS_VERSION}_{identity.get('name', 'ae')}_{key}"


@torch.no_grad()
def build_flow_targets(videos: Any, flow_ae: Any, identity: dict, cache_root: str | os.PathLike,
                       spec: TargetSpec, *, batch_size: int = 32, progress: bool = True,
                       indices: Iterable[int] | None = None) -> FlowTargets:
    """Compute (or reuse) the targets of ``videos`` (an :class:`dabfusion.data.AISTVideos`).

    ``flow_ae`` is a :class:`dabfusion.flow_ae.FlowAE` at the frame cache's size. Videos shorter
    than ``ref_span`` frames are skipped with a warning.
    """
    directory = targets_directory(cache_root, identity, spec)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "spec.json").write_text(json.dumps({"spec": asdict(spec), "flow_ae": identity}, indent=2))
    chosen = list(range(len(videos.videos))) if indices is None else list(indices)
    out, todo, short = [], [], []
    for i in chosen:
        rec = videos.videos[i]
        n = rec.n_frames
        refs = spec.refs(n)
        if not refs:
            short.append(rec.record.name.stem)
            continue
        key = _sha({"cache": rec.cached.file.name, "n": n, "refs": refs}, 12)
        base = directory / f"{rec.record.name.stem}.{key}"
        vt = VideoTargets(rec.record.name.stem, rec.record.name.music, n, refs,
                          base.with_name(base.name + ".flows.npy"), base.with_name(base.name + ".z.npy"), i)
        out.append(vt)
        if not (vt.flows_file.is_file() and vt.z_file.is_file()):
            todo.append(vt)
    if short:
        log.warning("%d video(s) shorter than ref_span=%d frames are left out of the diffusion targets, e.g. %s",
                    len(short), spec.ref_span, short[0])
    if not out:
        raise DataError(f"No video has the {spec.ref_span} frames the diffusion targets need; lower --ref-span "
                        "or --n-frames.")
    bar = None
    if todo and progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="flow targets (once)", dynamic_ncols=True)
    for vt in todo:
        frames = videos.video_frames(vt.record_index)
        flows, zs = [], []
        for r in vt.refs:
            ref = _to_tensor(frames[r:r + 1])
            zs.append(flow_ae.encode(ref).float().cpu())
            chunk_f, chunk_o = [], []
            for a in range(r, r + spec.ref_span, batch_size):
                b = min(a + batch_size, r + spec.ref_span)
                f, o = flow_ae.predict_flow(ref, _to_tensor(frames[a:b]))
                chunk_f.append(f.float().cpu())
                chunk_o.append(o.float().cpu())
            flows.append(torch.cat([torch.cat(chunk_f), torch.cat(chunk_o)], dim=1))
        _save_npy_atomic(vt.z_file, torch.cat(zs).numpy().astype(np.float16))
        _save_npy_atomic(vt.flows_file, torch.stack(flows).numpy().astype(np.float16))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return FlowTargets(out, spec, identity, directory)


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(frames), -1, 1))).float() / 255.0


# --------------------------------------------------------------------------------- music


@dataclass
class TrackMusic:
    starts: np.ndarray       # [S] window start frames
    global_vec: np.ndarray   # [S, D]
    frames: np.ndarray       # [S, N, F] (F = 0 without a beats branch)

    def at(self, start: int) -> tuple[np.ndarray, np.ndarray]:
        i = int(np.searchsorted(self.starts, start))
        if i >= len(self.starts) or self.starts[i] != start:
            raise KeyError(f"no music window starts at frame {start}")
        return self.global_vec[i], self.frames[i]


def build_music_table(tracks: dict[str, np.ndarray], sample_rate: int, encoder: Any, *, fps: float,
                      n_frames: int, starts: dict[str, Iterable[int]], cache_root: str | os.PathLike | None,
                      progress: bool = True) -> dict[str, TrackMusic]:
    """Music conditioning of every needed window start of every track (see the module doc)."""
    from ..music.encoder import spec_hash

    sh = spec_hash(encoder.spec)[:12]
    directory = None if cache_root is None else (
        Path(cache_root) / f"music_v{MUSIC_VERSION}_{sh}_{fps:g}fps_{n_frames}f_{int(sample_rate)}hz")
    out: dict[str, TrackMusic] = {}
    names = sorted(starts)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(names), desc="music windows", dynamic_ncols=True)
    for name in names:
        wave = tracks[name]
        st = np.array(sorted(set(int(s) for s in starts[name])), dtype=np.int64)
        digest = hashlib.sha256(np.ascontiguousarray(wave, dtype=np.float32).tobytes()).hexdigest()[:12]
        file = None if directory is None else directory / f"{name}.{digest}.{_sha(st.tolist(), 8)}.npz"
        if file is not None and file.is_file():
            with np.load(file, allow_pickle=False) as z:
                out[name] = TrackMusic(z["starts"], z["global_vec"], z["frames"])
        else:
            gs, fs = [], []
            for s in st:
                emb = encoder.encode(wave, sample_rate, n_frames=n_frames, fps=fps, start=float(s) / fps)
                gs.append(emb.global_vec)
                fs.append(emb.frame_features if emb.frame_features is not None
                          else np.zeros((n_frames, 0), np.float32))
            tm = TrackMusic(st, np.stack(gs).astype(np.float32), np.stack(fs).astype(np.float32))
            out[name] = tm
            if file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
                tmp = file.with_name(f".{file.stem}.tmp.npz")
                np.savez(tmp, starts=tm.starts, global_vec=tm.global_vec, frames=tm.frames)
                os.replace(tmp, file)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


def needed_music_starts(targets: FlowTargets) -> dict[str, set[int]]:
    need: dict[str, set[int]] = {}
    for v in targets.videos:
        s = need.setdefault(v.track, set())
        for r in v.refs:
            s.update(r + off for off in targets.spec.offsets())
    return need


# --------------------------------------------------------------------------------- windows


class FlowWindowDataset(Dataset):
    """Training windows: model-space targets, z0, music, beat features, known prefix, CFG drop.

    Items (float32 unless said): ``x0`` [3, N, h, w] (the U-Net's layout), ``z0`` [C, h, w],
    ``music`` [D], ``beats`` [N, F], ``known_mask`` [N] bool, ``drop`` bool, ``video`` (stem),
    ``ref``, ``start`` (cached frame indices).
    """

    def __init__(self, targets: FlowTargets, music: dict[str, TrackMusic], *, flow_scale: float,
                 flow_power: float = 1.0, windows_per_ref: int = 1, p_first: float = 0.3, p_known: float = 0.8,
                 max_known: int | None = None, p_drop: float = 0.1, seed: int = 0) -> None:
        self.targets, self.music = targets, music
        self.spec = targets.spec
        self.flow_scale, self.flow_power = float(flow_scale), float(flow_power)
        self.windows_per_ref = int(windows_per_ref)
        self.p_first, self.p_known, self.p_drop = float(p_first), float(p_known), float(p_drop)
        self.max_known = int(max_known if max_known is not None else max(1, self.spec.n_frames // 2))
        self.seed, self.epoch = int(seed), 0
        self.items = [(v, j) for v, vt in enumerate(targets.videos) for j in range(len(vt.refs))]
        self.offsets = self.spec.offsets()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items) * self.windows_per_ref

    def draw(self, index: int) -> tuple[int, int, int, int, bool]:
        """(video, ref index, offset, known frames, drop) of item ``index`` this epoch."""
        v, j = self.items[index // self.windows_per_ref]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        later = self.offsets[1:]
        off = 0 if (not later or rng.random() < self.p_first) else int(rng.choice(later))
        known = 0
        if rng.random() < self.p_known:
            known = 1 if off == 0 else int(rng.integers(1, self.max_known + 1))
        drop = bool(rng.random() < self.p_drop)
        return v, j, off, known, drop

    def __getitem__(self, index: int) -> dict[str, Any]:
        v, j, off, n_known, drop = self.draw(index)
        vt = self.targets.videos[v]
        n = self.spec.n_frames
        raw = torch.from_numpy(np.asarray(self.targets.array(vt.flows_file)[j, off:off + n], dtype=np.float32))
        x = to_model_space(raw[:, :2], raw[:, 2:3], self.flow_scale, self.flow_power)  # [N, 3, h, w]
        if off == 0:  # frame 0 of a first window *is* the reference: exact identity
            x[0] = identity_frame(x.shape[-1])
        z0 = torch.from_numpy(np.asarray(self.targets.array(vt.z_file)[j], dtype=np.float32))
        start = vt.refs[j] + off
        g, f = self.music[vt.track].at(start)
        mask = torch.zeros(n, dtype=torch.bool)
        mask[:n_known] = True
        return {"x0": x.transpose(0, 1).contiguous(), "z0": z0, "music": torch.from_numpy(np.array(g)),
                "beats": torch.from_numpy(np.array(f)), "known_mask": mask, "drop": drop,
                "video": vt.stem, "ref": vt.refs[j], "start": start}


class BeatWindowDataset(Dataset):
    """Training windows on the beat grid (:mod:`.beat_time`): the same items as
    :class:`FlowWindowDataset`, but ``x0`` [3, N, h, w] holds N samples, ``samples_per_beat`` per
    music beat, read off the cached per-frame flows (linear interpolation between frames).

    A window starts ``off`` samples after its reference (0 with probability ``p_first``: a first
    window, whose sample 0 is the reference itself, known; otherwise any offset whose samples stay
    inside the cached span, so training sees every distance from the reference that a long clip
    reaches). There is no other known prefix: at inference the windows of a clip are denoised
    together (:func:`.samplers.sample_sequence`), none continues a generated one. ``music`` maps
    each track to its :class:`~.beat_time.BeatMusic` (precomputed); video frame ``k`` shows track
    time ``k / fps`` (AIST++ videos start with their music).
    """

    def __init__(self, targets: FlowTargets, music: dict[str, Any], *, fps: float, samples_per_beat: int,
                 n_samples: int, flow_scale: float, flow_power: float = 1.0, windows_per_ref: int = 1,
                 p_first: float = 0.3, p_drop: float = 0.1, seed: int = 0) -> None:
        self.targets, self.music = targets, music
        self.fps, self.per, self.n = float(fps), int(samples_per_beat), int(n_samples)
        self.flow_scale, self.flow_power = float(flow_scale), float(flow_power)
        self.windows_per_ref = int(windows_per_ref)
        self.p_first, self.p_drop = float(p_first), float(p_drop)
        self.seed, self.epoch = int(seed), 0
        span = targets.spec.ref_span
        self.items, self.reach = [], []
        short = 0
        for v, vt in enumerate(targets.videos):
            clock = music[vt.track].clock
            for j, r in enumerate(vt.refs):
                u_ref = float(clock.phase(r / self.fps))
                u_last = float(clock.phase((r + span - 1) / self.fps))
                reach = int(np.floor((u_last - u_ref) * self.per + 1e-9)) - (self.n - 1)
                if reach < 0:  # the cached span holds fewer beats than a window: its tail would be frozen
                    short += 1
                    continue
                self.items.append((v, j))
                self.reach.append(reach)
        if short:
            log.warning("%d reference(s) whose cached span holds fewer than %d beats are left out of the beat-time "
                        "windows; raise --ref-span", short, -(-self.n // self.per))
        if not self.items:
            raise DataError(f"No cached span holds a window of {self.n} samples ({self.n / self.per:g} beats); "
                            "raise --ref-span or lower --n-frames.")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items) * self.windows_per_ref

    def draw(self, index: int) -> tuple[int, int, int, bool]:
        """(video, ref index, offset in samples, drop) of item ``index`` this epoch."""
        k = index // self.windows_per_ref
        v, j = self.items[k]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        reach = self.reach[k]
        first = rng.random() < self.p_first
        off = 0 if (first or reach < 1) else int(rng.integers(1, reach + 1))
        return v, j, off, bool(rng.random() < self.p_drop)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from .beat_time import resample_linear

        v, j, off, drop = self.draw(index)
        vt = self.targets.videos[v]
        r = vt.refs[j]
        tm = self.music[vt.track]
        phases = float(tm.clock.phase(r / self.fps)) + (off + np.arange(self.n)) / self.per
        times = tm.clock.time(phases)
        pos = times * self.fps - r  # fractional frames after the reference, inside the cached span
        lo = int(np.clip(np.floor(pos.min()), 0, self.targets.spec.ref_span - 1))
        hi = int(np.clip(np.ceil(pos.max()) + 1, lo + 1, self.targets.spec.ref_span))
        raw = torch.from_numpy(np.asarray(self.targets.array(vt.flows_file)[j, lo:hi], dtype=np.float32))
        raw = resample_linear(raw, pos - lo)
        x = to_model_space(raw[:, :2], raw[:, 2:3], self.flow_scale, self.flow_power)  # [N, 3, h, w]
        mask = torch.zeros(self.n, dtype=torch.bool)
        if off == 0:  # sample 0 of a first window *is* the reference
            x[0] = identity_frame(x.shape[-1])
            mask[0] = True
        z0 = torch.from_numpy(np.asarray(self.targets.array(vt.z_file)[j], dtype=np.float32))
        f = tm.features(times)
        beats = torch.zeros(self.n, 0) if f is None else torch.from_numpy(f)
        return {"x0": x.transpose(0, 1).contiguous(), "z0": z0,
                "music": torch.from_numpy(np.array(tm.global_vector(times[0], times[-1]))),
                "beats": beats, "known_mask": mask, "drop": drop, "video": vt.stem, "ref": r, "start": off}


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        if isinstance(vals[0], torch.Tensor):
            out[k] = torch.stack(vals)
        elif isinstance(vals[0], bool):
            out[k] = torch.tensor(vals, dtype=torch.bool)
        else:
            out[k] = vals
    return out
