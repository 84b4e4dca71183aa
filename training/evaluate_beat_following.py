"""Does a trained flow diffusion follow music it never heard? Alignment, delay, samplers, length, ablation.

The researcher's experiments on one diffusion checkpoint (``python -m dabfusion.evaluate`` is the
paper's protocol over a whole model folder, Tables 1-6 with video quality;
``training/evaluate_flow_ae.py`` measures the flow auto-encoder's reconstructions).

    python -m training.evaluate_beat_following --data data/synthdance --fps 15 \\
        --flow-ae runs/flow_ae_small/flow_ae.safetensors \\
        --checkpoint runs/diffusion_small/diffusion.safetensors \\
        --ablation-checkpoint runs/diffusion_small_nobeats/diffusion.safetensors --out runs/eval_diffusion

For every held-out video (test split: music never heard in training) it generates a clip from the
video's first frame and its music, and measures (from pixels, :mod:`dabfusion.metrics`):

1. ``main``: 2D-MM Align and AV-Align (corrected and original variants) of the generated clips,
   of the ground-truth clips, of the flow AE's reconstruction of them (its own flows of the true
   frames: the ceiling a generated clip can reach), and of the generated clips and the
   reconstructions scored against *another* test track's music (mismatched control) - the
   paper's Table 3 plus a ceiling and a control it lacks. Also per clip: the number of kinematic
   beats (generated against ground truth), how many of them sit at a window border (against
   the music beats' share there: chance), with a figure ``speed_vs_borders.png``, and the motion
   amplitude: the mean Farneback speed of the generated clip over the ground truth's (1: the
   figure moves as much as the dancer did).
2. ``delay``: the same clips generated with the music delayed by half a beat (same seeds); the
   motion's lag against the undelayed generation (cross-correlation of the speed curves) should
   be half a beat (``shift_beats`` 0.5).
3. ``samplers``: 25-step DPM-Solver++ against the paper's 1000-step DDPM on a subset of the
   clips (same seeds): the ratio of their 2D-MM Align and of their sampling times, and each
   sampler's motion amplitude.
4. ``long``: clips of three training windows (a beat-time model: clips of the main length, whose
   windows are beats): 2D-MM Align per window position, and the latent flow discontinuity at
   window borders against that within windows.
5. ``ablation``: the model trained with ``--no-beat-features`` on the same clips (Table 6).

Prints Markdown tables and writes ``results.json``, ``report.md``, ``speed_vs_borders.png`` (and the
clips, with ``--save-videos``) into
``--out``. Runs with tiny random checkpoints as a smoke test (``--max-videos 2 --ddpm-steps 20``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from dabfusion.data.dataset import frames_to_tensor
from dabfusion.diffusion import MusicWindows, pad_front
from dabfusion.diffusion.schedule import SAMPLERS
from dabfusion.flow_ae import render_video
from dabfusion.metrics.borders import border_discontinuity
from dabfusion.metrics.alignment import DEFAULT_SMOOTH_SIGMA, beat_alignment_score, kinematic_beats, smooth_gaussian
from dabfusion.metrics.av_align import av_align
from dabfusion.metrics.mm_align import (MMAlignResult, circular_phase_shift, clip_beats_in_frames, estimate_lag,
                                       mm_align, music_beat_times)
from dabfusion.metrics.optical_flow_motion import motion_speed
from dabfusion.pipeline import DabFusionPipeline, ReferenceLatent
from training.train_diffusion import add_music_arguments, build_music_encoder

log = logging.getLogger("evaluate_beat_following")
EXPERIMENTS = ("main", "delay", "samplers", "long", "ablation")
#: A kinematic beat this close (frames) to a window border counts as sitting on it.
BORDER_TOLERANCE = 1.5
#: Clips whose kinematic-beat count is within this fraction of the ground truth's count as matching it.
BEAT_COUNT_TOLERANCE = 0.25
#: Clips drawn in speed_vs_borders.png.
PLOTTED_CLIPS = 3
#: Motion amplitude (generated mean speed over the ground truth's) a model should reach (issue 23).
MOTION_AMPLITUDE_RANGE = (0.8, 1.25)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="data folder in AIST++ layout (SynthDance or AIST++)")
    p.add_argument("--split", default="auto")
    p.add_argument("--fps", type=float, default=30.0, help="must be the fps the model was trained at")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--audio-sample-rate", type=int, default=22050)
    p.add_argument("--flow-ae", required=True)
    p.add_argument("--checkpoint", required=True, help="diffusion checkpoint (training/train_diffusion.py)")
    p.add_argument("--ablation-checkpoint", default=None, help="a checkpoint trained with --no-beat-features")
    add_music_arguments(p)
    p.add_argument("--out", required=True)
    p.add_argument("--experiments", default=",".join(EXPERIMENTS), help="comma-separated subset of " + ",".join(EXPERIMENTS))
    p.add_argument("--max-videos", type=int, default=10, help="held-out videos to use (spread over tracks)")
    p.add_argument("--seconds", type=float, default=8.0, help="length of the main clips (8 s: enough beats per clip)")
    p.add_argument("--sampler", choices=SAMPLERS, default="dpm++")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance-scale", type=float, default=1.5)
    p.add_argument("--overlap", type=int, default=None, help="window overlap (default: N/4)")
    p.add_argument("--sampler-videos", type=int, default=4, help="clips for the DDPM-1000 comparison")
    p.add_argument("--sampler-seconds", type=float, default=None,
                   help="their length (default: --seconds; one 16-frame window holds too few beats for 2D-MM "
                        "Align, and DDPM costs 1000 U-Net calls per window)")
    p.add_argument("--ddpm-steps", type=int, default=1000, help="DDPM steps (1000 = the paper's)")
    p.add_argument("--long-videos", type=int, default=6, help="clips for the 3x-length experiment")
    p.add_argument("--metric-size", type=int, default=None, help="resize frames for optical flow (default: native)")
    p.add_argument("--sigma", type=float, default=3.0, help="2D-MM Align sigma in frames")
    p.add_argument("--batch", type=int, default=4, help="clips generated together")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--save-videos", action="store_true", help="write the generated clips (mp4 with music)")
    return p


@dataclass
class Generated:
    video: np.ndarray     # uint8 [L, H, W, 3]
    flow: torch.Tensor    # [L, 2, h, w]
    starts: list[int]
    window: int
    overlap: int
    seconds: float        # sampling time per clip (batched)
    borders: list[int]    # frame steps i -> i + 1 that cross a window border


@dataclass
class Clip:
    index: int            # into the held-out videos
    stem: str
    track: str
    gt: np.ndarray        # uint8 [L, H, W, 3]
    ref: ReferenceLatent  # the first frame's latent


class Evaluator:
    def __init__(self, args: argparse.Namespace) -> None:
        from dabfusion.data.dataset import AISTVideos
        from dabfusion.data.music_bank import MusicBank

        self.args = args
        if args.threads:
            torch.set_num_threads(args.threads)
        self.device = torch.device(args.device)
        self.pipe = DabFusionPipeline.from_checkpoints(args.flow_ae, args.checkpoint, music=build_music_encoder(args),
                                                       device=self.device, fps=args.fps)
        self.ablation = self.pipe.with_diffusion(args.ablation_checkpoint) if args.ablation_checkpoint else None
        self.flow_ae, self.encoder, self.config = self.pipe.flow_ae, self.pipe.music, self.pipe.config
        self.header = self.pipe.header
        self.n = self.config.n_frames
        self.fps = float(args.fps)
        self.videos = AISTVideos(args.data, split="test", split_spec=args.split, fps=self.fps,
                                 size=self.flow_ae.image_size, cache_dir=args.cache_dir, progress=False)
        files = {v.record.name.music: v.record.music_path for v in self.videos.videos}
        self.bank = MusicBank(files, args.audio_sample_rate)
        self.beats = {t: music_beat_times(w, self.bank.sample_rate) for t, w in self.bank.tracks.items()}
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self._references: dict[tuple[str, int], dict[str, float]] = {}
        self._gt_speeds: dict[tuple[str, int], float] = {}

    # -------------------------------------------------------------- clips and generation
    def clips(self, n_videos: int, length: int) -> list[Clip]:
        """Up to ``n_videos`` held-out videos with >= ``length`` frames, round-robin over tracks."""
        by_track: dict[str, list[int]] = {}
        for i, v in enumerate(self.videos.videos):
            if v.n_frames >= length:
                by_track.setdefault(v.record.name.music, []).append(i)
        order = []
        while any(by_track.values()) and len(order) < n_videos:
            for t in sorted(by_track):
                if by_track[t] and len(order) < n_videos:
                    order.append(by_track[t].pop(0))
        out = []
        for i in order:
            frames = np.asarray(self.videos.video_frames(i)[:length])
            rec = self.videos.videos[i].record
            out.append(Clip(i, rec.name.stem, rec.name.music, frames, self.pipe.encode_reference(frames[0])))
        if not out:
            raise SystemExit(f"no held-out video has {length} frames at {self.fps:g} fps; lower --seconds")
        return out

    def clip_frames(self, seconds: float) -> int:
        """Frames of a clip of ``seconds``; a frame-time model's clip covers at least one window (of frames)."""
        frames = int(round(seconds * self.fps))
        return frames if self.config.in_beat_time else max(self.n, frames)

    def long_frames(self, length: int) -> int:
        """Three windows of frames; a beat-time window is beats, so there the main clip (several windows)."""
        return length if self.config.in_beat_time else 3 * self.n

    @torch.no_grad()
    def reconstruct(self, clip: Clip, chunk: int = 16) -> np.ndarray:
        """The clip re-drawn from the flow AE's own flows of its true frames: what a generator that got
        every flow right would show (the ceiling of the generated clips' scores)."""
        frames = frames_to_tensor(clip.gt)
        ref = frames[:1]
        flows, occs = [], []
        for i in range(0, frames.shape[0], chunk):
            part = frames[i:i + chunk]
            flow, occ = self.flow_ae.predict_flow(ref.expand(part.shape[0], -1, -1, -1), part)
            flows.append(flow)
            occs.append(occ)
        return render_video(self.flow_ae, clip.ref.z0, torch.cat(flows), torch.cat(occs))

    def music(self, track: str, offset: float = 0.0) -> MusicWindows:
        return self.pipe.encode_music(self.bank.tracks[track], self.bank.sample_rate, offset=offset).windows(self.fps)

    def generate(self, pipe: DabFusionPipeline, clips: list[Clip], length: int, *,
                 offsets: Sequence[float] | None = None, sampler: str | None = None, steps: int | None = None,
                 seed_extra: int = 0) -> list[Generated]:
        """Clips generated in batches of ``--batch`` (one seed per batch: every experiment sees the same noise)."""
        offsets = list(offsets) if offsets is not None else [0.0] * len(clips)
        settings = pipe.settings(sampler=sampler or self.args.sampler, steps=steps or self.args.steps,
                                 guidance=self.args.guidance_scale, overlap=self.args.overlap)
        out: list[Generated] = []
        bs = max(1, self.args.batch)
        for i in range(0, len(clips), bs):
            part, offs = clips[i:i + bs], offsets[i:i + bs]
            music = [pipe.encode_music(self.bank.tracks[c.track], self.bank.sample_rate, offset=o)
                     for c, o in zip(part, offs)]
            t0 = time.perf_counter()
            flows = pipe.sample_flows_batch([c.ref for c in part], music, n_frames=length, fps=self.fps,
                                            settings=replace(settings, seed=self.args.seed * 100_003 + i * 7 + seed_extra))
            seconds = (time.perf_counter() - t0) / len(part)
            for c, f in zip(part, flows):
                out.append(Generated(pipe.render(c.ref, f), f.flow, f.starts, f.window, f.overlap, seconds, f.borders))
        return out

    def wave(self, track: str, delay: float = 0.0) -> np.ndarray:
        w = self.bank.tracks[track]
        return pad_front(w, delay, self.bank.sample_rate) if delay > 0 else w

    def alignment(self, video: np.ndarray, track: str, *,
                  delay: float = 0.0) -> tuple[dict[str, float], MMAlignResult]:
        """:meth:`score` and the 2D-MM details (speed, beats) behind it, for border counts and plots."""
        a = self.args
        mm = mm_align(video, self.fps, beat_times=self.beats[track] + delay, sigma=a.sigma, size=a.metric_size)
        wave = self.wave(track, delay)
        av_c = av_align(video, self.fps, wave, self.bank.sample_rate, variant="corrected", size=a.metric_size)
        av_o = av_align(video, self.fps, wave, self.bank.sample_rate, variant="original", size=a.metric_size)
        return ({"mm_align": mm.score, "av_align": av_c.score, "av_align_original": av_o.score,
                 "kinematic_beats": int(mm.kinematic_beats.size), "music_beats": int(mm.music_beats.size),
                 "mean_speed": mean_speed_per_frame(mm.speed, self.fps)}, mm)

    def score(self, video: np.ndarray, track: str, *, delay: float = 0.0) -> dict[str, float]:
        """2D-MM Align and AV-Align (both variants) of ``video`` against ``track`` (delayed by ``delay`` s)."""
        return self.alignment(video, track, delay=delay)[0]

    def save(self, name: str, video: np.ndarray, track: str, delay: float = 0.0) -> None:
        if not self.args.save_videos:
            return
        from dabfusion.media.video import write_mp4

        path = self.out / "videos" / f"{name}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_mp4(path, video, self.fps, audio=self.wave(track, delay), sample_rate=self.bank.sample_rate,
                  preset="veryfast")

    # -------------------------------------------------------------- experiments
    def mismatched_track(self, track: str) -> str:
        tracks = sorted(self.bank.tracks)
        if len(tracks) < 2:
            raise SystemExit("the mismatched-music control needs at least two held-out tracks")
        return tracks[(tracks.index(track) + 1) % len(tracks)]

    def gt_mean_speed(self, c: Clip) -> float:
        """Mean Farneback speed (pixels per frame) of the clip's ground truth, from the reference scores
        when they were measured, else measured here once."""
        key = (c.stem, len(c.gt))
        if key in self._references:
            return self._references[key]["gt_mean_speed"]
        if key not in self._gt_speeds:
            speed = motion_speed(c.gt, self.fps, size=self.args.metric_size)
            self._gt_speeds[key] = mean_speed_per_frame(speed, self.fps)
        return self._gt_speeds[key]

    def reference_scores(self, c: Clip, other: str) -> dict[str, float]:
        """Scores of the ground truth and of the flow AE reconstruction (own and ``other`` music);
        they do not depend on the diffusion model, so the ablation reuses them."""
        key = (c.stem, len(c.gt))
        if key not in self._references:
            rec = self.reconstruct(c)
            row = prefixed("gt", self.score(c.gt, c.track))
            # the metric's own controls: the true dance against another track and against its music
            # played half a beat late must score lower, or no generated score means anything
            row.update(prefixed("gt_mis", self.score(c.gt, other)))
            row.update(prefixed("gt_late", self.score(c.gt, c.track, delay=self.beat_period(c.track) / 2)))
            row.update(prefixed("rec", self.score(rec, c.track)))
            row.update(prefixed("rec_mis", self.score(rec, other)))
            self.save(f"reconstruction_{c.stem}", rec, c.track)
            self._references[key] = row
        return self._references[key]

    def run_main(self, model: Any, clips: list[Clip], length: int, tag: str = "generated") -> dict[str, Any]:
        rows, cache, traces = [], {}, []
        for c, g in zip(clips, self.generate(model, clips, length)):
            video = g.video
            cache[c.stem] = g
            other = self.mismatched_track(c.track)
            gen, mm = self.alignment(video, c.track)
            row = {"video": c.stem, "track": c.track, "mismatched_track": other, "seconds": g.seconds,
                   "n_borders": len(g.borders)}
            row.update(prefixed("gen", gen))
            row.update(self.reference_scores(c, other))
            row.update(prefixed("mis", self.score(video, other)))
            row.update(beat_count_match(row))
            row.update(motion_amplitudes(row))
            row.update(border_shares(mm.kinematic_beats, mm.music_beats, g.borders))
            rows.append(row)
            traces.append((c.stem, mm, g.borders))
            self.save(f"{tag}_{c.stem}", video, c.track)
            log.info("%s %s: 2D-MM %.3f (gt %.3f, reconstruction %.3f, mismatched %.3f), AV %.3f (gt %.3f), "
                     "kinematic beats %d (gt %d), %.2f of them at window borders", tag, c.stem, row["gen_mm_align"],
                     row["gt_mm_align"], row["rec_mm_align"], row["mis_mm_align"], row["gen_av_align"],
                     row["gt_av_align"], row["gen_kinematic_beats"], row["gt_kinematic_beats"],
                     row["kin_near_border"])
        if model is self.pipe:
            self._cache = cache
            plot_speed_vs_borders(self.out / "speed_vs_borders.png", traces[:PLOTTED_CLIPS])
        return {"rows": rows, "summary": summarise_main(rows)}

    def beat_period(self, track: str) -> float:
        """Median seconds between the track's beats (0.5 s when the tracker found fewer than two)."""
        beats = self.beats[track]
        return float(np.median(np.diff(beats))) if beats.size > 1 else 0.5

    def run_delay(self, clips: list[Clip], length: int) -> dict[str, Any]:
        periods = [self.beat_period(c.track) for c in clips]
        cached = getattr(self, "_cache", {})
        base = ([cached[c.stem] for c in clips] if all(c.stem in cached for c in clips)
                else self.generate(self.pipe, clips, length))
        delayed = self.generate(self.pipe, clips, length, offsets=[-p / 2 for p in periods])
        rows = []
        for c, period, g0, g1 in zip(clips, periods, base, delayed):
            delay = period / 2
            s0 = motion_speed(g0.video, self.fps, size=self.args.metric_size)
            s1 = motion_speed(g1.video, self.fps, size=self.args.metric_size)
            pf = period * self.fps
            # the direction is known (a delay), and a half-beat shift of beat-periodic motion looks
            # the same both ways: search lags in [0, one beat)
            lag = estimate_lag(s0, s1, max(1, int(round(pf)) - 1), min_lag=0)
            kin0, kin = kinematic_beats(s0), kinematic_beats(s1)
            mus0 = clip_beats_in_frames(self.beats[c.track], self.fps, len(s1))
            mus1 = clip_beats_in_frames(self.beats[c.track] + delay, self.fps, len(s1))
            phase = circular_phase_shift(kin0, kin, self.beats[c.track] * self.fps)
            rows.append({"video": c.stem, "beat_period_frames": pf,
                         "expected_shift_frames": delay * self.fps, "measured_shift_frames": lag,
                         "shift_beats": lag / pf if pf > 0 else float("nan"), "phase_shift_beats": phase,
                         "mm_vs_delayed_music": beat_alignment_score(kin, mus1, self.args.sigma),
                         "mm_vs_original_music": beat_alignment_score(kin, mus0, self.args.sigma)})
            self.save(f"delayed_{c.stem}", g1.video, c.track, delay)
        s = summarise(rows)
        ph = np.array([r["phase_shift_beats"] for r in rows], dtype=np.float64)
        ph = ph[np.isfinite(ph)]
        s["phase_shift_beats"] = (float(np.mod(np.angle(np.exp(2j * np.pi * ph).mean()) / (2 * np.pi), 1.0))
                                  if ph.size else float("nan"))  # circular mean
        if rows:
            s["measured_over_expected"] = float(np.mean([r["measured_shift_frames"] / r["expected_shift_frames"]
                                                         for r in rows if r["expected_shift_frames"] > 0]))
        return {"rows": rows, "summary": s}

    def run_samplers(self, clips: list[Clip], length: int) -> dict[str, Any]:
        rows = [{"video": c.stem} for c in clips]
        for name, sampler, steps in (("dpm++", "dpm++", self.args.steps), ("ddpm", "ddpm", self.args.ddpm_steps)):
            for row, c, g in zip(rows, clips, self.generate(self.pipe, clips, length, sampler=sampler, steps=steps)):
                sc = self.score(g.video, c.track)
                row.update({f"{name}_mm_align": sc["mm_align"], f"{name}_av_align": sc["av_align"],
                            f"{name}_seconds": g.seconds, f"{name}_mean_speed": sc["mean_speed"],
                            f"{name}_motion_amplitude": _ratio(sc["mean_speed"], self.gt_mean_speed(c))})
        s = summarise(rows)
        if rows:
            s["mm_ratio_dpm_over_ddpm"] = _ratio(s["dpm++_mm_align"], s["ddpm_mm_align"])
            s["time_ratio_ddpm_over_dpm"] = _ratio(s["ddpm_seconds"], s["dpm++_seconds"])
            s["ddpm_steps"] = self.args.ddpm_steps
            s["dpm_steps"] = self.args.steps
        return {"rows": rows, "summary": s}

    def window_spans(self, track: str, g: Generated, length: int) -> list[tuple[int, int]]:
        """Frames ``[a, b)`` under each window: its samples are frames, or beat-grid samples in beat time
        (read at the frames as the generation does)."""
        if not self.config.in_beat_time:
            return [(s, min(s + g.window, length)) for s in g.starts]
        beat = self.music(track).beat_music()
        pos = beat.grid(length, self.config.samples_per_beat).frame_positions(beat.origin, length, self.fps)
        return [(int(np.searchsorted(pos, s)), int(np.searchsorted(pos, s + g.window))) for s in g.starts]

    def run_long(self, clips: list[Clip], length: int) -> dict[str, Any]:
        rows, per_window = [], {}
        for c, sample in zip(clips, self.generate(self.pipe, clips, length, seed_extra=1)):
            video = sample.video
            disc = border_discontinuity(sample.flow, sample.borders)
            speed = motion_speed(video, self.fps, size=self.args.metric_size)
            kin = kinematic_beats(speed)
            mus = clip_beats_in_frames(self.beats[c.track], self.fps, length)
            row = {"video": c.stem, "flow_jump_border": disc["border"], "flow_jump_within": disc["within"],
                   "flow_jump_ratio": disc["ratio"], "mm_align": beat_alignment_score(kin, mus, self.args.sigma)}
            row.update(border_shares(kin, mus, sample.borders))
            for j, (a, b) in enumerate(self.window_spans(c.track, sample, length)):
                k = kin[(kin >= a) & (kin < b)]
                m = mus[(mus >= a - self.args.sigma) & (mus < b + self.args.sigma)]
                sc = beat_alignment_score(k, m, self.args.sigma) if k.size else float("nan")
                row[f"mm_window_{j}"] = sc
                per_window.setdefault(j, []).append(sc)
            # pixel-level: mean abs frame difference at border steps vs within
            diffs = np.abs(np.diff(video.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
            border = [i for i in sample.borders if i < diffs.size]
            inside = [i for i in range(diffs.size) if i not in border]
            row["pixel_jump_border"] = float(diffs[border].mean()) if border else float("nan")
            row["pixel_jump_within"] = float(diffs[inside].mean()) if inside else float("nan")
            rows.append(row)
            self.save(f"long_{c.stem}", video, c.track)
        s = summarise(rows)
        s["frames"] = length
        s["per_window_mm_align"] = {str(j): float(np.nanmean(v)) if np.any(np.isfinite(v)) else float("nan")
                                    for j, v in per_window.items()}
        return {"rows": rows, "summary": s}

    def run(self) -> dict[str, Any]:
        args = self.args
        todo = [e.strip() for e in args.experiments.split(",") if e.strip()]
        unknown = sorted(set(todo) - set(EXPERIMENTS))
        if unknown:
            raise SystemExit(f"unknown experiments {unknown}; choose from {EXPERIMENTS}")
        length = self.clip_frames(args.seconds)
        sampler_length = self.clip_frames(args.sampler_seconds or args.seconds)
        long_length = self.long_frames(length)
        need = max([length] + ([long_length] if "long" in todo else [])
                   + ([sampler_length] if "samplers" in todo else []))
        clips = self.clips(args.max_videos, need)
        results: dict[str, Any] = {
            "checkpoint": args.checkpoint, "ablation_checkpoint": args.ablation_checkpoint,
            "config": {k: v for k, v in self.config.to_dict().items() if k not in ("music_spec",)},
            "fps": self.fps, "clip_frames": length, "time_base": self.config.time_base,
            "sampler": args.sampler, "steps": args.steps,
            "guidance_scale": args.guidance_scale, "videos": len(clips),
            "tracks": sorted({c.track for c in clips}), "sigma": args.sigma}
        for c in clips:
            c.gt = c.gt[:need]
        main_clips = [Clip(c.index, c.stem, c.track, c.gt[:length], c.ref) for c in clips]
        if "main" in todo:
            results["main"] = self.run_main(self.pipe, main_clips, length)
            self.write(results)
        if "delay" in todo:
            results["delay"] = self.run_delay(main_clips, length)
            self.write(results)
        if "samplers" in todo:
            one = [Clip(c.index, c.stem, c.track, c.gt[:sampler_length], c.ref) for c in clips[:args.sampler_videos]]
            results["samplers"] = self.run_samplers(one, sampler_length)
            self.write(results)
        if "long" in todo:
            results["long"] = self.run_long(clips[:args.long_videos], long_length)
            self.write(results)
        if "ablation" in todo and self.ablation is not None:
            results["ablation"] = self.run_main(self.ablation, main_clips, length, tag="nobeats")
        print(self.write(results))
        return results

    def write(self, results: dict[str, Any]) -> str:
        """results.json and report.md as they stand (after every experiment: a long run cut short keeps
        what it measured)."""
        (self.out / "results.json").write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
        report = format_report(results)
        (self.out / "report.md").write_text(report)
        return report


# ------------------------------------------------------------------------------ measures


def prefixed(prefix: str, scores: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in scores.items()}


def beat_count_match(row: dict[str, Any]) -> dict[str, float]:
    """Kinematic beats of the generated clip and of the reconstruction against the ground truth's:
    motion that dances to the beat makes about as many speed minima as the dancer did."""
    gt = row["gt_kinematic_beats"]
    out = {}
    for who in ("gen", "rec"):
        n = row[f"{who}_kinematic_beats"]
        out[f"beats_ratio_{who}_over_gt"] = n / gt if gt else float("nan")
        out[f"beats_within_25pct_{who}"] = float(abs(n - gt) <= BEAT_COUNT_TOLERANCE * gt) if gt else float("nan")
    return out


def mean_speed_per_frame(speed: Any, fps: float) -> float:
    """Mean of a per-frame speed curve in pixels per second (:func:`motion_speed`), in pixels per frame."""
    speed = np.asarray(speed, dtype=np.float64)
    return float(speed.mean() / fps) if speed.size else float("nan")


def motion_amplitudes(row: dict[str, Any]) -> dict[str, float]:
    """How much the generated clip (and the flow AE reconstruction) moves against the ground truth of
    the same clip: mean Farneback speed over the ground truth's (1: as much as the dancer; a figure
    that follows the beat but barely moves scores well on 2D-MM Align and still looks wrong)."""
    gt = row["gt_mean_speed"]
    return {"motion_amplitude": _ratio(row["gen_mean_speed"], gt),
            "motion_amplitude_rec": _ratio(row["rec_mean_speed"], gt)}


def near_border_fraction(frames: Any, borders: Sequence[int]) -> float:
    """Share of ``frames`` within :data:`BORDER_TOLERANCE` of a window border (step ``i -> i + 1``
    sits at ``i + 0.5``); NaN without frames."""
    f = np.asarray(frames, dtype=np.float64).reshape(-1)
    if f.size == 0:
        return float("nan")
    if len(borders) == 0:
        return 0.0
    b = np.asarray(borders, dtype=np.float64) + 0.5
    return float((np.abs(f[:, None] - b[None, :]).min(axis=1) <= BORDER_TOLERANCE).mean())


def border_shares(kinematic: Any, music: Any, borders: Sequence[int]) -> dict[str, float]:
    """Kinematic beats at window borders, with the music beats' share there as chance: speed minima
    set by the window seams rather than by the music show as ``kin_near_border`` >> ``music_near_border``."""
    return {"kin_near_border": near_border_fraction(kinematic, borders),
            "music_near_border": near_border_fraction(music, borders)}


def plot_speed_vs_borders(path: Path, traces: Sequence[tuple[str, MMAlignResult, Sequence[int]]]) -> None:
    """One panel per clip: motion speed, music beats, window borders and kinematic beats - to see
    whether the speed minima follow the music or the window layout."""
    if not traces:
        return
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(traces), 1, figsize=(10, 2.6 * len(traces)), squeeze=False, dpi=100)
    for ax, (name, mm, borders) in zip(axes[:, 0], traces):
        smooth = smooth_gaussian(mm.speed, DEFAULT_SMOOTH_SIGMA)
        ax.plot(mm.speed, color="0.6", lw=0.8, label="motion speed")
        ax.plot(smooth, color="0.1", lw=1.4, label="smoothed (minima = kinematic beats)")
        for j, b in enumerate(mm.music_beats):
            ax.axvline(b, color="tab:blue", lw=1.2, alpha=0.7, label="music beat" if j == 0 else None)
        for j, b in enumerate(borders):
            ax.axvline(b + 0.5, color="tab:red", lw=1.2, ls="--", label="window border" if j == 0 else None)
        kin = np.asarray(mm.kinematic_beats, dtype=np.int64)
        ax.plot(kin, smooth[kin], "v", color="tab:orange", ms=7, label="kinematic beat")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("px / s")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("frame")
    axes[0, 0].legend(fontsize=7, ncol=5, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ------------------------------------------------------------------------------ summaries


def _ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(b) and b != 0 else float("nan")


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k in (rows[0] if rows else {}) if isinstance(rows[0][k], (int, float)) and not isinstance(rows[0][k], bool)]
    out = {}
    for k in keys:
        vals = np.array([r[k] for r in rows], dtype=np.float64)
        out[k] = float(np.nanmean(vals)) if np.any(np.isfinite(vals)) else float("nan")
    return out


def summarise_main(rows: list[dict[str, Any]]) -> dict[str, float]:
    """:func:`summarise` plus how much of the reconstruction ceiling the generated clips reach."""
    s = summarise(rows)
    if rows:
        s["gen_over_rec"] = _ratio(s["gen_mm_align"], s["rec_mm_align"])
        s["gen_over_rec_av"] = _ratio(s["gen_av_align"], s["rec_av_align"])
        if "gen_mean_speed" in s:  # the ratio of the means (clips that move more weigh more)
            s["motion_amplitude_of_means"] = _ratio(s["gen_mean_speed"], s["gt_mean_speed"])
            # the diffusion's own share: the flow AE's reconstruction is the most a generator can move
            s["motion_amplitude_over_rec"] = _ratio(s["gen_mean_speed"], s["rec_mean_speed"])
    return s


def _f(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"


def _score_row(label: str, s: dict[str, float], prefix: str) -> str:
    return (f"| {label} | {_f(s.get(f'{prefix}_mm_align'))} | {_f(s.get(f'{prefix}_av_align'))} | "
            f"{_f(s.get(f'{prefix}_av_align_original'))} |")


def _motion_section(s: dict[str, float]) -> list[str]:
    """Motion amplitude: mean Farneback speed of the generated clips against the ground truth's."""
    if "motion_amplitude" not in s:
        return []
    lo, hi = MOTION_AMPLITUDE_RANGE
    return [f"motion amplitude (mean Farneback speed, generated / ground truth, same clips): "
            f"{_f(s.get('motion_amplitude'))} (mean of the clips' ratios; ratio of the means "
            f"{_f(s.get('motion_amplitude_of_means'))}; target {lo:g}-{hi:g}); ground truth "
            f"{_f(s.get('gt_mean_speed'))} px/frame, generated {_f(s.get('gen_mean_speed'))}, flow AE "
            f"reconstruction {_f(s.get('rec_mean_speed'))} ({_f(s.get('motion_amplitude_rec'))} of ground truth; "
            f"generated / reconstruction {_f(s.get('motion_amplitude_over_rec'))})", ""]


def _rhythm_section(s: dict[str, float]) -> list[str]:
    """Beat counts and speed minima at window borders: does the rhythm come from the music or the seams?"""
    def row(label: str, who: str) -> str:
        ratio = "1" if who == "gt" else _f(s.get(f"beats_ratio_{who}_over_gt"))
        close = "-" if who == "gt" else _f(s.get(f"beats_within_25pct_{who}"))
        return f"| {label} | {_f(s.get(f'{who}_kinematic_beats'))} | {ratio} | {close} |"

    return ["## Rhythm against the window layout", "",
            "| clips | kinematic beats per clip | / ground truth | clips within 25% of ground truth |",
            "|---|---|---|---|", row("ground truth", "gt"), row("flow AE reconstruction", "rec"),
            row("generated", "gen"), "",
            f"music beats per clip {_f(s.get('gt_music_beats'))}; window borders per clip {_f(s.get('n_borders'))}. "
            f"Kinematic beats of the generated clips within {BORDER_TOLERANCE:g} frames of a window border: "
            f"{_f(s.get('kin_near_border'))}, against {_f(s.get('music_near_border'))} of the music beats (chance). "
            "Speed curves: speed_vs_borders.png.", ""]


def format_report(r: dict[str, Any]) -> str:
    lines = [f"# Flow diffusion evaluation ({r['videos']} held-out clips of {r['clip_frames']} frames at "
             f"{r['fps']:g} fps, {r['sampler']} {r['steps']} steps, guidance {r['guidance_scale']}, "
             f"time base {r.get('time_base', 'frames')})", ""]
    if "main" in r:
        s = r["main"]["summary"]
        lines += ["## Alignment (Table 3, with a reconstruction ceiling and a mismatched-music control)", "",
                  "| clips | 2D-MM Align | AV-Align | AV-Align (original code) |", "|---|---|---|---|",
                  _score_row("ground truth", s, "gt"),
                  _score_row("ground truth vs mismatched music", s, "gt_mis"),
                  _score_row("ground truth vs its music half a beat late", s, "gt_late"),
                  _score_row("flow AE reconstruction", s, "rec"),
                  _score_row("flow AE reconstruction vs mismatched music", s, "rec_mis"),
                  _score_row("generated", s, "gen"), _score_row("generated vs mismatched music", s, "mis"), "",
                  f"generated / ground truth: 2D-MM {_f(_ratio(s['gen_mm_align'], s['gt_mm_align']))}, "
                  f"AV-Align {_f(_ratio(s['gen_av_align'], s['gt_av_align']))} (target >= 0.9); "
                  f"generated / reconstruction: 2D-MM {_f(s.get('gen_over_rec'))}, "
                  f"AV-Align {_f(s.get('gen_over_rec_av'))}; "
                  f"generated - mismatched: 2D-MM {_f(s['gen_mm_align'] - s['mis_mm_align'])}, "
                  f"AV {_f(s['gen_av_align'] - s['mis_av_align'])}", ""]
        lines += _motion_section(s)
        lines += _rhythm_section(s)
    if "delay" in r:
        s = r["delay"]["summary"]
        lines += ["## Music delayed by half a beat", "",
                  "| expected shift (frames) | measured shift (frames) | measured / expected | measured shift "
                  "(beats, expect 0.5) | kinematic-beat phase shift (beats, expect 0.5) | 2D-MM vs delayed music | "
                  "2D-MM vs original music |",
                  "|---|---|---|---|---|---|---|",
                  f"| {_f(s.get('expected_shift_frames'))} | {_f(s.get('measured_shift_frames'))} | "
                  f"{_f(s.get('measured_over_expected'))} | {_f(s.get('shift_beats'))} | "
                  f"{_f(s.get('phase_shift_beats'))} | "
                  f"{_f(s.get('mm_vs_delayed_music'))} | {_f(s.get('mm_vs_original_music'))} |", ""]
    if "samplers" in r:
        s = r["samplers"]["summary"]
        lines += ["## DPM-Solver++ against DDPM", "",
                  "| sampler | steps | 2D-MM Align | AV-Align | motion amplitude | seconds per clip |",
                  "|---|---|---|---|---|---|",
                  f"| DDPM | {s.get('ddpm_steps')} | {_f(s.get('ddpm_mm_align'))} | {_f(s.get('ddpm_av_align'))} | "
                  f"{_f(s.get('ddpm_motion_amplitude'))} | {_f(s.get('ddpm_seconds'))} |",
                  f"| DPM-Solver++ | {s.get('dpm_steps')} | {_f(s.get('dpm++_mm_align'))} | {_f(s.get('dpm++_av_align'))} | "
                  f"{_f(s.get('dpm++_motion_amplitude'))} | {_f(s.get('dpm++_seconds'))} |", "",
                  f"2D-MM ratio DPM++/DDPM {_f(s.get('mm_ratio_dpm_over_ddpm'))} (target within 3%); "
                  f"time ratio DDPM/DPM++ {_f(s.get('time_ratio_ddpm_over_dpm'))}", ""]
    if "long" in r:
        s = r["long"]["summary"]
        pw = s.get("per_window_mm_align", {})
        lines += [f"## Clips of three windows ({s.get('frames')} frames)", "",
                  "| window | " + " | ".join(pw) + " |", "|---|" + "---|" * len(pw),
                  "| 2D-MM Align | " + " | ".join(_f(v) for v in pw.values()) + " |", "",
                  f"latent flow jump at borders {_f(s.get('flow_jump_border'))} vs within windows "
                  f"{_f(s.get('flow_jump_within'))} (ratio {_f(s.get('flow_jump_ratio'))}); pixel jump "
                  f"{_f(s.get('pixel_jump_border'))} vs {_f(s.get('pixel_jump_within'))}; kinematic beats at "
                  f"borders {_f(s.get('kin_near_border'))} (music beats: {_f(s.get('music_near_border'))})", ""]
    if "ablation" in r and "main" in r:
        s, a = r["main"]["summary"], r["ablation"]["summary"]
        lines += ["## Beat features (Table 6)", "", "| model | beat features | 2D-MM Align | AV-Align |", "|---|---|---|---|",
                  f"| DabFusion | no | {_f(a['gen_mm_align'])} | {_f(a['gen_av_align'])} |",
                  f"| DabFusion | yes | {_f(s['gen_mm_align'])} | {_f(s['gen_av_align'])} |", ""]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    return Evaluator(args).run()


if __name__ == "__main__":
    main()
