"""The toy rung of the beat-following ladder: latent flows that are a pure function of the beat.

A click track at some tempo; a "dancer" whose latent flow draws one loop of a circle per beat,
easing out of and into a stop on every click (:func:`circle`; still during the lead-in), so its
speed is zero - a kinematic beat - exactly on the beats and nowhere else. Targets are written as
real :class:`dabfusion.diffusion.data.FlowTargets` files and the music goes through the real
:class:`dabfusion.music.MusicEncoder` (librosa), so the real training windows, loss, sampler and
generation run on it; only the flow auto-encoder is left out (the motion is measured on the
generated latent flows), because this rung asks whether the *diffusion* can time motion.

:func:`run_rung` trains a tiny model from scratch and measures, on tempi it never heard:
2D-MM Align of the generated motion against its own music and against another track, and how
far a half-beat delay of the music moves the motion. Used by ``tests/test_beat_following.py``
and, at a larger budget, by the lab log's runs (``python -m dabfusion.testing.beat_toy``).
Nothing in the product imports this package.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..diffusion.beat_time import BeatClock
from .dance_toy import click_track

SAMPLE_RATE = 22050
FPS = 20.0
LATENT = 8
TRAIN_BPM = (80.0, 92.0, 104.0, 120.0, 136.0, 150.0)
TEST_BPM = (88.0, 112.0, 128.0, 144.0)
AMPLITUDES = (0.35, 0.5, 0.65)  # one per dancer, in normalised flow units


def track_beats(bpm: float, duration: float, lead_in: float) -> np.ndarray:
    return np.arange(lead_in, duration - 0.25, 60.0 / bpm)


def circle(beats: np.ndarray, times: np.ndarray, amplitude: float) -> np.ndarray:
    """[T, 2]: one loop of a circle per beat, easing out of and into a stop on every beat
    (angle 2 pi e(s), e(s) = s - sin(2 pi s) / 2 pi, s = the phase within the beat); still
    before the first beat. The pose is a pure function of the beat phase."""
    u = np.maximum(BeatClock(beats).phase(times), 0.0)
    s = u - np.floor(u)
    theta = 2 * np.pi * (s - np.sin(2 * np.pi * s) / (2 * np.pi))
    return amplitude * np.stack([np.cos(theta) - 1.0, np.sin(theta)], axis=-1)


def latent_flows(pos: np.ndarray, ref: int, span: int) -> np.ndarray:
    """float16 [span, 3, h, w]: flow from frame ``ref`` to each of the next ``span`` frames
    (a uniform shift, fully visible)."""
    out = np.zeros((span, 3, LATENT, LATENT), np.float32)
    out[:, :2] = (pos[ref:ref + span] - pos[ref])[:, :, None, None]
    out[:, 2] = 1.0
    return out.astype(np.float16)


@dataclass
class ToyTrack:
    name: str
    bpm: float
    lead_in: float
    wave: np.ndarray
    beats: np.ndarray


def make_track(name: str, bpm: float, duration: float, lead_in: float) -> ToyTrack:
    wave = click_track(bpm, duration, lead_in=lead_in, sample_rate=SAMPLE_RATE)
    return ToyTrack(name, bpm, lead_in, wave, track_beats(bpm, duration, lead_in))


def dancer_latent(d: int, channels: int, pos_ref: Any = (0.0, 0.0)) -> torch.Tensor:
    """z0 of dancer ``d`` at position ``pos_ref`` on its circle (default: the start pose): the
    reference latent shows who dances and where."""
    g = torch.Generator().manual_seed(1000 + d)
    z = torch.randn(1, channels, LATENT, LATENT, generator=g) * 0.5
    z[:, 0], z[:, 1] = float(pos_ref[0]), float(pos_ref[1])
    return z


def write_targets(root: Path, tracks: list[ToyTrack], *, duration: float, channels: int, n_frames: int,
                  ref_span: int, ref_hop: int):
    """Real FlowTargets files for every (track, dancer)."""
    from ..diffusion.data import FlowTargets, TargetSpec, VideoTargets, _save_npy_atomic

    spec = TargetSpec(n_frames=n_frames, ref_hop=ref_hop, ref_span=ref_span, start_hop=1)
    frames = int(round(duration * FPS))
    times = np.arange(frames) / FPS
    videos = []
    for tr in tracks:
        for d, amp in enumerate(AMPLITUDES):
            x = circle(tr.beats, times, amp)
            refs = spec.refs(frames)
            base = root / f"{tr.name}_d{d}"
            vt = VideoTargets(f"{tr.name}_d{d}", tr.name, frames, refs, base.with_suffix(".flows.npy"),
                              base.with_suffix(".z.npy"), len(videos))
            _save_npy_atomic(vt.flows_file, np.stack([latent_flows(x, r, ref_span) for r in refs]))
            z = torch.cat([dancer_latent(d, channels, x[r]) for r in refs])
            _save_npy_atomic(vt.z_file, z.numpy().astype(np.float16))
            videos.append(vt)
    return FlowTargets(videos, spec, {"name": "toy", "weights_sha256": "toy"}, root)


def speed_of(flow: torch.Tensor) -> np.ndarray:
    """Per-frame speed of a latent flow [L, 2, h, w] (central differences of the mean shift)."""
    f = flow.detach().float().mean((2, 3)).numpy()  # [L, 2]
    return np.linalg.norm(np.gradient(f, axis=0), axis=1) * FPS


def tiny_config(time_base: str, n_samples: int, **kw: Any):
    from ..diffusion.config import PRESETS
    from ..music import MusicEncoder

    config = PRESETS["tiny"].replace(n_frames=n_samples, time_base=time_base, samples_per_beat=8,
                                     flow_scale=1.0, flow_power=1.0, **kw)
    return config.with_music(MusicEncoder.default().spec)


def build_dataset(config, targets, tracks: list[ToyTrack], encoder):
    from ..diffusion.beat_time import BeatMusic
    from ..diffusion.data import BeatWindowDataset, FlowWindowDataset, build_music_table, needed_music_starts

    if config.in_beat_time:
        music = {t.name: BeatMusic(encoder, t.wave, SAMPLE_RATE, FPS).precompute() for t in tracks}
        return BeatWindowDataset(targets, music, fps=FPS, samples_per_beat=config.samples_per_beat,
                                 n_samples=config.n_frames, flow_scale=config.flow_scale,
                                 flow_power=config.flow_power, windows_per_ref=4, p_first=0.3,
                                 p_drop=config.cond_drop_prob, seed=0)
    table = build_music_table({t.name: t.wave for t in tracks}, SAMPLE_RATE, encoder, fps=FPS,
                              n_frames=config.n_frames, starts=needed_music_starts(targets), cache_root=None,
                              progress=False)
    return FlowWindowDataset(targets, table, flow_scale=config.flow_scale, flow_power=config.flow_power,
                             windows_per_ref=4, p_drop=config.cond_drop_prob, seed=0)


def train(config, dataset, *, steps: int, batch_size: int = 8, lr: float = 2e-3, seed: int = 0):
    from ..diffusion import UNet3D, training_scheduler
    from ..diffusion.data import collate
    from ..diffusion.losses import diffusion_loss

    torch.manual_seed(seed)
    model = UNet3D(config)
    sched = training_scheduler(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    lr_at = (lambda s: lr * min(1.0, (s + 1) / 50) * (0.1 if s > 0.8 * steps else 1.0))
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        dataset.set_epoch(step)
        batch = collate([dataset[int(i)] for i in rng.integers(0, len(dataset), batch_size)])
        loss = diffusion_loss(model, sched, config, batch, generator=gen)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    return model.eval(), losses


def evaluate(model, tracks: list[ToyTrack], encoder, *, seconds: float, steps: int = 20, guidance: float = 1.0,
             seed: int = 0) -> dict[str, Any]:
    """Own-music and mismatched 2D-MM Align, the motion's shift under a half-beat music delay, and the
    seams: flow change across window borders over flow change within windows (1 = no seam)."""
    from ..metrics.borders import border_discontinuity
    from ..metrics.mm_align import clip_beats_in_frames, estimate_lag, mm_align_from_speed
    from ..pipeline import DabFusionPipeline

    pipe = DabFusionPipeline.from_parts(None, model, encoder, fps=FPS, name="beat toy")  # latents only: no flow AE
    n = int(round(seconds * FPS))
    rows = []
    for k, tr in enumerate(tracks):
        other = tracks[(k + 1) % len(tracks)]
        period = 60.0 / tr.bpm
        ref = pipe.latent_reference(dancer_latent(k % len(AMPLITUDES), model.config.latent_channels))
        speeds, clips = [], []
        for delay in (0.0, period / 2):
            music = pipe.encode_music(tr.wave, SAMPLE_RATE, offset=-delay)
            clips.append(pipe.sample_flows(ref, music, n_frames=n, steps=steps, guidance=guidance, seed=seed + k))
            speeds.append(speed_of(clips[-1].flow))
        seams = border_discontinuity(clips[0].flow, clips[0].borders)
        own = mm_align_from_speed(speeds[0], clip_beats_in_frames(tr.beats, FPS, n))
        mis = mm_align_from_speed(speeds[0], clip_beats_in_frames(other.beats, FPS, n))
        gt = mm_align_from_speed(speed_of(torch.as_tensor(latent_flows(
            circle(tr.beats, np.arange(n) / FPS, 0.5), 0, n)[:, :2].astype(np.float32))),
            clip_beats_in_frames(tr.beats, FPS, n))
        pf = period * FPS
        # compare after the lead-in, where there is a beat to follow
        a = int(np.ceil((tr.lead_in + period) * FPS))
        lag = estimate_lag(speeds[0][a:], speeds[1][a:], max_lag=int(np.ceil(pf)) - 1, min_lag=0)
        rows.append({"track": tr.name, "bpm": tr.bpm, "gt": gt.score, "own": own.score, "mismatched": mis.score,
                     "kinematic_beats": int(own.kinematic_beats.size), "delay_shift_beats": lag / pf,
                     "windows": len(clips[0].starts), "seam_ratio": seams["ratio"]})
    mean = {k: float(np.mean([r[k] for r in rows]))
            for k in ("gt", "own", "mismatched", "delay_shift_beats", "seam_ratio")}
    return {"rows": rows, **mean}


def run_rung(root: Path, *, time_base: str = "beats", steps: int = 600, seconds: float = 6.0,
             duration: float = 8.0, n_samples: int = 16, seed: int = 0, sample_steps: int = 20,
             **config_kw: Any) -> dict[str, Any]:
    from ..music import MusicEncoder

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    encoder = MusicEncoder.default()
    rng = np.random.default_rng(seed)
    train_tracks = [make_track(f"train{i}", bpm, duration, float(rng.uniform(0.3, 0.8)))
                    for i, bpm in enumerate(TRAIN_BPM)]
    test_tracks = [make_track(f"test{i}", bpm, duration, float(rng.uniform(0.3, 0.8)))
                   for i, bpm in enumerate(TEST_BPM)]
    config = tiny_config(time_base, n_samples, **config_kw)
    span = int(round(duration * FPS)) // 2
    targets = write_targets(root / "targets", train_tracks, duration=duration, channels=config.latent_channels,
                            n_frames=n_samples if time_base == "frames" else 1, ref_span=span,
                            ref_hop=max(1, span // 4))
    ds = build_dataset(config, targets, train_tracks, encoder)
    t0 = time.perf_counter()
    model, losses = train(config, ds, steps=steps, seed=seed)
    t_train = time.perf_counter() - t0
    res = evaluate(model, test_tracks, encoder, seconds=seconds, steps=sample_steps, seed=seed)
    res.update(time_base=time_base, steps=steps, train_seconds=t_train, eval_seconds=time.perf_counter() - t0 - t_train,
               loss_first=float(np.mean(losses[:20])), loss_last=float(np.mean(losses[-50:])),
               config={k: v for k, v in config.to_dict().items() if k not in ("music_spec", "flow_ae")})
    return res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="Train and measure the toy rung (see the module docstring).")
    p.add_argument("--out", required=True)
    p.add_argument("--time-base", choices=("frames", "beats"), default="beats")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--n-samples", type=int, default=16)
    p.add_argument("--prediction-type", default="v_prediction")
    p.add_argument("--temporal-kernel", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    res = run_rung(Path(a.out), time_base=a.time_base, steps=a.steps, n_samples=a.n_samples, seed=a.seed,
                   prediction_type=a.prediction_type, temporal_kernel=a.temporal_kernel)
    print(json.dumps({k: v for k, v in res.items() if k != "config"}, indent=1))
    return res


if __name__ == "__main__":
    main()
