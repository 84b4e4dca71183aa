"""Per-video scores of generated and ground-truth clips: the numbers the tables aggregate.

For each clip (frame 0 = the reference, then ``n`` frames) and its music (from the track's
start, which is the video's frame 0):

- quality, over the ``n`` generated frames against the ground truth's frames ``1..n``: PSNR and
  SSIM (:mod:`dabfusion.metrics.image_quality`), LPIPS (:mod:`.lpips`, when its weights were
  given) - means over frames;
- alignment, for the generated and for the ground-truth clip (all ``n + 1`` frames): 2D-MM Align
  (sigma 3 frames, kinematic beats from Farneback speed, librosa beats of the whole track),
  AV-Align in the corrected and in the original variant of its reference code; one optical-flow
  pass per clip feeds all three (the same functions as :func:`dabfusion.metrics.mm_align.mm_align`
  and :func:`dabfusion.metrics.av_align.av_align`, which a test checks);
- CLIP-Score (:mod:`.clip_score`) of the frames ``1..n`` against the Wav2CLIP embedding of the
  clip's music, for both clips, when CLIP and Wav2CLIP were given;
- the I3D feature of each whole clip, for FVD (:mod:`.fvd`), when I3D was given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..metrics.alignment import DEFAULT_SIGMA
from ..metrics.av_align import av_align_iou
from ..metrics.beat_report import scores_from_magnitudes
from ..metrics.image_quality import psnr, ssim
from ..metrics.optical_flow_motion import flow_magnitudes


@dataclass
class Scorers:
    """The optional networks (``None`` = skipped, with the note saying which file enables them)."""

    lpips: Any = None
    clip: Any = None
    i3d: Any = None
    notes: dict[str, str] = field(default_factory=dict)
    sigma: float = DEFAULT_SIGMA
    metric_size: int | None = None

    @property
    def available(self) -> dict[str, bool]:
        return {"lpips": self.lpips is not None, "clip_score": self.clip is not None, "fvd": self.i3d is not None}


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(frames, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0


def quality(generated: np.ndarray, real: np.ndarray, lpips: Any = None) -> dict[str, float]:
    """Mean PSNR (dB), SSIM and LPIPS over the generated frames (``[1:]``) against the real ones."""
    a, b = np.asarray(generated)[1:], np.asarray(real)[1:]
    if len(a) == 0 or a.shape != b.shape:
        raise ValueError(f"clips of different shapes or without generated frames: {a.shape} vs {b.shape}")
    ta, tb = to_tensor(a), to_tensor(b)
    out = {"psnr": float(psnr(ta, tb).mean()), "ssim": float(ssim(ta, tb).mean())}
    if lpips is not None:
        out["lpips"] = lpips.video(a, b)
    return out


def alignment(frames: np.ndarray, fps: float, wave: np.ndarray, sample_rate: int, beat_times: np.ndarray, *,
              sigma: float = DEFAULT_SIGMA, size: int | None = None) -> dict[str, float]:
    """2D-MM Align and AV-Align (corrected, original) of one clip from one optical-flow pass."""
    _, mm, audio, video = scores_from_magnitudes(flow_magnitudes(frames, size=size), fps, beat_times, wave,
                                                 sample_rate, sigma=sigma)
    return {"mm_align": float(mm.score), "av_align": av_align_iou(audio, video, fps, "corrected"),
            "av_align_original": av_align_iou(audio, video, fps, "original"),
            "kinematic_beats": int(mm.kinematic_beats.size), "music_beats": int(mm.music_beats.size),
            "audio_peaks": int(len(audio)), "video_peaks": int(len(video))}


@dataclass
class Scores:
    """Rows (one per generated clip: model, frames, video) and I3D features by the same keys."""

    rows: list[dict[str, Any]]
    gen_features: dict[tuple[str, int], dict[str, np.ndarray]]
    gt_features: dict[int, dict[str, np.ndarray]]


def score_all(videos: Mapping[tuple[str, int], Mapping[str, np.ndarray]], clips: Sequence[Any], test: Any, fps: float,
              scorers: Scorers, *, labels: Mapping[str, str] | None = None,
              progress: Callable[[str], Any] | None = None) -> Scores:
    """Score every generated clip and, once per length, its ground truth."""
    by_stem = {c.stem: c for c in clips}
    rows: list[dict[str, Any]] = []
    gen_feats: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    gt_feats: dict[int, dict[str, np.ndarray]] = {}
    gt_cache: dict[tuple[str, int], dict[str, float]] = {}
    sr = test.sample_rate
    for (mkey, n), per_video in sorted(videos.items()):
        for stem, video in per_video.items():
            clip = by_stem[stem]
            length = n + 1
            real = np.asarray(clip.frames[:length])
            wave = test.wave(clip.track)
            beats = test.beat_times(clip.track)
            audio_emb = None
            if scorers.clip is not None:
                seg = wave[: int(round(length / fps * sr))]
                audio_emb = scorers.clip.audio_embedding(seg, sr, key=(clip.track, length))
            if (stem, n) not in gt_cache:
                g = {f"gt_{k}": v for k, v in alignment(real, fps, wave, sr, beats, sigma=scorers.sigma,
                                                         size=scorers.metric_size).items()}
                if audio_emb is not None:
                    g["gt_clip_score"] = scorers.clip.score(real[1:], audio_emb)
                if scorers.i3d is not None:
                    gt_feats.setdefault(n, {})[stem] = scorers.i3d(real)
                gt_cache[(stem, n)] = g
            row: dict[str, Any] = {"model": mkey, "label": (labels or {}).get(mkey, mkey), "frames": n,
                                   "video": stem, "track": clip.track, "genre": clip.genre, "camera": clip.camera,
                                   "dancer": clip.dancer}
            row.update(quality(video, real, scorers.lpips))
            row.update(alignment(video, fps, wave, sr, beats, sigma=scorers.sigma, size=scorers.metric_size))
            if audio_emb is not None:
                row["clip_score"] = scorers.clip.score(np.asarray(video)[1:], audio_emb)
            if scorers.i3d is not None:
                gen_feats.setdefault((mkey, n), {})[stem] = scorers.i3d(video)
            row.update(gt_cache[(stem, n)])
            rows.append(row)
            if progress is not None:
                progress(f"scored {stem} ({mkey}, {n} frames): PSNR {row['psnr']:.2f}, 2D-MM {row['mm_align']:.3f}, "
                         f"AV {row['av_align']:.3f}")
    return Scores(rows, gen_feats, gt_feats)
