"""Clips of any length: window planning and sampling, every window relative to the original z0.

The paper generates fixed-length clips and chains longer ones from the last generated frame
(the next clip's reference), and reports that quality degrades: every link re-encodes a decoded,
slightly blurred frame and drifts. We never change the reference:

- every window generates flows *from the original reference latent z0*, so every frame of the
  clip is ``decode(warp(z0, flow_i, occ_i))`` - no decoded frame is ever fed back;
- window ``j`` starts ``window - overlap`` frames after window ``j-1`` and takes that window's
  last ``overlap`` generated frames as its known prefix: the U-Net was trained with a
  known-frames mask (random prefixes), and with ``replace_known`` the prefix is also imposed by
  replacement at every step (:mod:`.samplers`), so motion continues across the border;
- the first window's known prefix is the reference itself (zero flow, fully visible) when
  ``start_from_reference``: the clip starts exactly at the input image;
- each window's music conditioning (global vector and per-frame beat features) is computed for
  that window's own span of the music (:class:`MusicWindows`);
- the overlap is cross-faded (linear ramp); with replacement both sides agree already.

Frames past the requested length (the last window is never shortened, so its conditioning
matches training) are generated and cut off.

That is the frame-time path (the paper's models). A beat-time model (``config.time_base ==
"beats"``, :mod:`.beat_time`) takes another: the whole clip is one sequence on the music's beat
grid, its overlapping windows (half a window by default) are denoised together and blended at
every step (:func:`.samplers.sample_sequence`), so no window continues another and there is no
seam; the frames are then read off the grid. Only the reference (sample 0) is known.

The music sources live in :mod:`.music_windows`, the frames are drawn by
:mod:`dabfusion.flow_ae.render`, seams are measured by :mod:`dabfusion.metrics.borders`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from .beat_time import BeatClock, BeatGrid, BeatMusic, resample_cubic, resample_linear
from .music_windows import MusicSource
from .samplers import ProgressCallback, sample_sequence, sample_window
from .schedule import (DEFAULT_STEPS, canonical_sampler, frames_to_volume, from_model_space, identity_frame,
                       to_model_space, volume_to_frames)


def plan_windows(total: int, window: int, overlap: int) -> list[int]:
    """Start frames of the windows covering ``total`` frames (``ceil`` of the hops; >= 1 window)."""
    if window < 1 or total < 1:
        raise ValueError(f"need total >= 1 and window >= 1, got {total}, {window}")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window), got {overlap} for window {window}")
    hop = window - overlap
    count = 1 + max(0, math.ceil((total - window) / hop))
    return [j * hop for j in range(count)]


@dataclass
class LongSample:
    """What :func:`generate_flows` returns (frame-major, cut to the requested length)."""

    x: torch.Tensor               # [B, 3, L, h, w] model space
    flow: torch.Tensor            # [B, L, 2, h, w] normalised offsets (flow AE convention)
    occlusion: torch.Tensor       # [B, L, 1, h, w] in [0, 1]
    starts: list[int]             # window starts (frames; samples for a beat-time model)
    window: int
    overlap: int
    windows: list[torch.Tensor] = field(default_factory=list)  # raw per-window samples (debugging)
    #: per clip, the frame steps i -> i + 1 that cross a window border (where a seam would show;
    #: in beat time each clip's tempo puts them elsewhere)
    borders: list[list[int]] = field(default_factory=list)


def _stack_music(sources: Sequence[MusicSource | None], start: int, n: int, device: torch.device,
                 use_beats: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    gs, bs = [], []
    for src in sources:
        if src is None:
            return None, None
        g, f = src.window(start, n)
        gs.append(None if g is None else torch.as_tensor(g, dtype=torch.float32))
        bs.append(None if f is None else torch.as_tensor(f, dtype=torch.float32))
    music = None if any(g is None for g in gs) else torch.stack(gs).to(device)
    beats = None if (not use_beats or any(f is None for f in bs)) else torch.stack(bs).to(device)
    return music, beats


@torch.no_grad()
def generate_flows(model: Any, *, z0: torch.Tensor, n_frames: int,
                   music: MusicSource | Sequence[MusicSource | None] | None = None,
                   window: int | None = None, overlap: int | None = None, sampler: str = "dpm++",
                   num_inference_steps: int | None = None, guidance_scale: float = 1.0,
                   generator: torch.Generator | None = None, callback: ProgressCallback | None = None,
                   replace_known: bool = True, start_from_reference: bool = True, crossfade: bool = True,
                   keep_windows: bool = False) -> LongSample:
    """Flows for ``n_frames`` frames from ``z0`` ([B, C, h, w]) and the music, in windows.

    ``window`` defaults to the model's training length, ``overlap`` to :func:`default_overlap`.
    ``music``: one source for the batch or one per clip (a beat-time model needs
    :class:`MusicWindows`: the music's beats set its time axis). ``callback(done, total)``
    counts the denoising steps (of all windows in turn; of the joint sequence in beat time).
    ``replace_known``, ``crossfade`` and ``keep_windows`` concern the frame-time path only.
    """
    config = model.config
    b = z0.shape[0]
    sources = list(music) if isinstance(music, (list, tuple)) else [music] * b
    if len(sources) != b:
        raise ValueError(f"{len(sources)} music sources for a batch of {b} references")
    name = canonical_sampler(sampler)
    steps = int(num_inference_steps or DEFAULT_STEPS[name])
    if config.in_beat_time:
        return _generate_in_beat_time(model, z0=z0, n_frames=int(n_frames), sources=sources, window=window,
                                      overlap=overlap, sampler=name, steps=steps, guidance_scale=guidance_scale,
                                      generator=generator, callback=callback,
                                      start_from_reference=start_from_reference)
    device = next(model.parameters()).device
    win = int(window or config.n_frames)
    k = int(overlap if overlap is not None else default_overlap(win, beat_time=config.in_beat_time))
    starts = plan_windows(int(n_frames), win, k)
    size = config.latent_size
    total_ext = starts[-1] + win
    out = torch.zeros(b, 3, total_ext, size, size, device=device)
    z0 = z0.to(device)
    raw = []
    for j, s in enumerate(starts):
        m, bt = _stack_music(sources, s, win, device, config.uses_beats)
        known = torch.zeros(b, 3, win, size, size, device=device)
        mask = torch.zeros(b, win, dtype=torch.bool, device=device)
        n_known = 0
        if j == 0 and start_from_reference:
            n_known = 1
            known[:, :, 0] = identity_frame(size, device=device)
        elif j > 0:
            n_known = starts[j - 1] + win - s
            known[:, :, :n_known] = out[:, :, s:s + n_known]
        mask[:, :n_known] = True
        x = sample_window(model, z0=z0, n_frames=win, batch_size=b, music=m, beats=bt,
                          known=known if n_known else None, known_mask=mask if n_known else None,
                          sampler=name, num_inference_steps=steps, guidance_scale=guidance_scale,
                          generator=generator, callback=callback, replace_known=replace_known,
                          step_offset=j * steps, total_steps=len(starts) * steps)
        if keep_windows:
            raw.append(x.detach().cpu())
        if j > 0 and n_known and crossfade:
            w = torch.arange(1, n_known + 1, device=device, dtype=x.dtype) / (n_known + 1)
            w = w.view(1, 1, -1, 1, 1)
            out[:, :, s:s + n_known] = (1 - w) * out[:, :, s:s + n_known] + w * x[:, :, :n_known]
            out[:, :, s + n_known:s + win] = x[:, :, n_known:]
        elif j > 0:
            out[:, :, s + n_known:s + win] = x[:, :, n_known:]
        else:
            out[:, :, s:s + win] = x
    out = out[:, :, :n_frames]
    flow, occ = from_model_space(volume_to_frames(out), config.flow_scale, config.flow_power)
    borders = [s + k - 1 for s in starts[1:] if s + k - 1 < n_frames - 1]
    return LongSample(x=out, flow=flow, occlusion=occ, starts=starts, window=win, overlap=k, windows=raw,
                      borders=[borders] * b)


def default_overlap(window: int, *, beat_time: bool) -> int:
    """The one default overlap of consecutive windows. Frames: a quarter of the window (a known
    prefix); beats: half (windows denoised together)."""
    return max(1, window // 2) if beat_time else max(1, window // 4)


def _generate_in_beat_time(model: Any, *, z0: torch.Tensor, n_frames: int, sources: list, window: int | None,
                           overlap: int | None, sampler: str, steps: int, guidance_scale: float,
                           generator: torch.Generator | None, callback: ProgressCallback | None,
                           start_from_reference: bool) -> LongSample:
    """:func:`generate_flows` for a beat-time model: one sequence on each clip's beat grid
    (:mod:`.beat_time`), its windows denoised together (:func:`.samplers.sample_sequence`),
    then read at the video frames."""
    config = model.config
    device = next(model.parameters()).device
    b = z0.shape[0]
    win = int(window or config.n_frames)
    k = int(overlap if overlap is not None else default_overlap(win, beat_time=config.in_beat_time))
    per = config.samples_per_beat
    tracks: list[BeatMusic | None] = []
    for src in sources:
        if src is None:
            tracks.append(None)
        elif hasattr(src, "beat_music"):
            tracks.append(src.beat_music())
        else:
            raise ValueError("a beat-time model reads the music itself (its beats set the time axis): pass "
                             "MusicWindows (audio), not precomputed features")
    fps = next((t.fps for t in tracks if t is not None), 30.0)
    grids = [t.grid(n_frames, per) if t is not None else BeatGrid.for_clip(BeatClock([]), 0.0, n_frames, fps, per)
             for t in tracks]
    starts = plan_windows(max(g.n_samples for g in grids), win, k)
    length = starts[-1] + win
    music = beats = None
    if all(t is not None for t in tracks) and config.music_dim > 0:
        gv = []
        for t, g in zip(tracks, grids):
            times = g.times(0, length)
            gv.append(np.stack([t.global_vector(times[s], times[s + win - 1]) for s in starts]))
        music = torch.as_tensor(np.stack(gv), dtype=torch.float32)
        if config.uses_beats:
            beats = torch.as_tensor(np.stack([t.features(g.times(0, length)) for t, g in zip(tracks, grids)]),
                                    dtype=torch.float32)
    size = config.latent_size
    known = mask = None
    if start_from_reference:
        known = torch.zeros(b, 3, length, size, size, device=device)
        known[:, :, 0] = identity_frame(size, device=device)
        mask = torch.zeros(b, length, dtype=torch.bool, device=device)
        mask[:, 0] = True
    x = sample_sequence(model, z0=z0, length=length, starts=starts, window=win, music=music, beats=beats,
                        known=known, known_mask=mask, sampler=sampler, num_inference_steps=steps,
                        guidance_scale=guidance_scale, generator=generator, callback=callback)
    # read the frames off the grid in flow space (training read its samples off the frames there too)
    flow_s, occ_s = from_model_space(volume_to_frames(x), config.flow_scale, config.flow_power)  # [B, L, c, h, w]
    flows, occs, borders = [], [], []
    for i, (t, g) in enumerate(zip(tracks, grids)):
        pos = g.frame_positions(t.origin if t is not None else 0.0, n_frames, fps)
        flows.append(resample_cubic(flow_s[i], pos))
        occs.append(resample_linear(occ_s[i], pos).clamp(0, 1))
        borders.append(_border_steps(pos, starts, win, n_frames))
    flow, occ = torch.stack(flows), torch.stack(occs)
    out = frames_to_volume(to_model_space(flow, occ, config.flow_scale, config.flow_power))
    return LongSample(x=out, flow=flow, occlusion=occ, starts=starts, window=win, overlap=k, borders=borders)


def _border_steps(pos: np.ndarray, starts: Sequence[int], window: int, n_frames: int) -> list[int]:
    """Frame steps ``i -> i + 1`` across which a window begins (``pos[i] < s <= pos[i + 1]``) or ends
    (``pos[i] <= e < pos[i + 1]``), ``pos`` being each frame's fractional sample index."""
    begin = np.searchsorted(pos, list(starts[1:]), side="left") - 1
    end = np.searchsorted(pos, [s + window - 1 for s in starts[:-1]], side="right") - 1
    return sorted({int(j) for j in np.concatenate([begin, end]) if 0 <= j < n_frames - 1})
