"""Train the music-conditioned flow diffusion (paper section 3.4) on top of a trained flow AE.

One script from one CPU to many GPUs (Accelerate)::

    python -m training.train_diffusion --data data/synthdance --flow-ae runs/flow_ae_small/flow_ae.safetensors \\
        --config small --max-steps 4000 --out runs/diffusion_small
    accelerate launch -m training.train_diffusion --data data/aist --flow-ae flow_ae_paper.safetensors \\
        --config paper --clap clap/630k-audioset-best.pt --clap-adapter clap_adapter.safetensors \\
        --wav2clip wav2clip/Wav2CLIP.pt --wav2clip-adapter wav2clip_adapter.safetensors \\
        --mixed-precision bf16 --epochs 250 --batch-size 16 --out runs/diffusion_paper

Before the first step the flow AE runs once over the training videos and its flows, occlusions
and reference latents are cached on disk (:mod:`dabfusion.diffusion.data`, keyed by the flow
AE's weight hash and the data settings), and the music encoder once over every window start.

Writes into ``--out``: ``diffusion.safetensors`` (+ ``.json``; EMA weights, the file the
pipeline loads; its config records the music encoder spec and the flow AE identity),
``checkpoints/step_*/`` (full training states; ``--resume`` continues exactly), ``metrics.csv``,
``loss.png``, ``samples/step_*.mp4`` (generated | ground truth, with the music) and
``train_args.json``.

Reproducibility: item draws (window, known prefix, guidance drop) are functions of (seed,
epoch, index); the diffusion step and noise of each batch come from (seed, step); RNG states
are saved; so ``--resume`` reproduces the uninterrupted run bit for bit on the same hardware.
``--no-beat-features`` trains the ablation of the paper's Table 6.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from dabfusion.diffusion.checkpoint import flow_ae_identity, save_diffusion
from dabfusion.diffusion.config import PRESETS, DiffusionConfig, get_config
from dabfusion.diffusion.data import (BeatWindowDataset, FlowWindowDataset, TargetSpec, build_flow_targets,
                                      build_music_table, collate, needed_music_starts)
from dabfusion.diffusion.losses import diffusion_loss
from dabfusion.diffusion.schedule import SAMPLERS, training_scheduler
from dabfusion.diffusion.unet3d import UNet3D, count_parameters
from dabfusion.training_utils import StageTrainer, add_common_training_args, train_main

log = logging.getLogger("train_diffusion")
EXPORT_NAME = "diffusion.safetensors"
#: Beat time: seconds of flow cached after each reference (a whole evaluation clip).
BEAT_TIME_SPAN_SECONDS = 8.0
#: Beat time: default window, in beats.
BEAT_TIME_WINDOW_BEATS = 4


# ---------------------------------------------------------------------------------- arguments


def add_music_arguments(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("music encoder (default: librosa beats only, no weight files)")
    m.add_argument("--clap", default=None, help="CLAP checkpoint (enables e_c)")
    m.add_argument("--clap-adapter", default=None)
    m.add_argument("--wav2clip", default=None, help="Wav2CLIP checkpoint (enables e_w)")
    m.add_argument("--wav2clip-adapter", default=None)
    m.add_argument("--mel", action="store_true", help="add the weight-free mel-statistics stand-in branch")
    m.add_argument("--mel-adapter", default=None)
    m.add_argument("--trust-pickle", action="store_true", help="allow pickled third-party encoder files")


def build_music_encoder(args: argparse.Namespace, cache_dir: str | None = None):
    from dabfusion.music import MusicEncoder

    if not any([args.clap, args.wav2clip, args.mel, args.mel_adapter]):
        return MusicEncoder.default(cache_dir=cache_dir)
    enc = MusicEncoder.from_files(clap=args.clap, clap_adapter=args.clap_adapter, wav2clip=args.wav2clip,
                                  wav2clip_adapter=args.wav2clip_adapter, mel_adapter=args.mel_adapter,
                                  trust_pickle=args.trust_pickle, cache_dir=cache_dir)
    if args.mel and not args.mel_adapter:
        enc = MusicEncoder(clap=_branch(enc, "clap", "encoder"), clap_adapter=_branch(enc, "clap", "adapter"),
                           wav2clip=_branch(enc, "wav2clip", "encoder"),
                           wav2clip_adapter=_branch(enc, "wav2clip", "adapter"), mel=True, cache_dir=cache_dir)
    return enc


def _branch(enc: Any, name: str, what: str) -> Any:
    for b in enc.branches:
        if b.name == name:
            return getattr(b, what)
    return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = p.add_argument_group("data")
    add_common_training_args(d, ("--data", "--split", "--fps", "--cache-dir"), split={"default": "auto"},
                             data={"help": "data folder in AIST++ layout (SynthDance or AIST++)"},
                             fps={"help": "frame rate the videos are cached and generated at"})
    d.add_argument("--target-cache", default=None,
                   help="where flow targets and music tables are cached (default: the frame cache folder)")
    d.add_argument("--ref-hop", type=int, default=None,
                   help="frames between cached references (default: the span, so the flow AE runs once per frame)")
    d.add_argument("--ref-span", type=int, default=None,
                   help="frames after each reference with cached flows (default: 2N; >= N)")
    d.add_argument("--start-hop", type=int, default=2, help="window starts on this frame grid")
    d.add_argument("--audio-sample-rate", type=int, default=22050, help="rate the music tracks are held at")
    add_common_training_args(d, ("--num-workers",))
    f = p.add_argument_group("flow AE")
    f.add_argument("--flow-ae", required=True, help="trained flow AE checkpoint (training/train_flow_ae.py)")
    add_music_arguments(p)
    m = p.add_argument_group("model")
    m.add_argument("--config", default="small", help=f"preset ({', '.join(PRESETS)}) or a JSON file")
    m.add_argument("--time-base", choices=("beats", "frames"), default="beats",
                   help="beats: the model generates --samples-per-beat samples per music beat, read back at the "
                        "video frames (motion timed by the music); frames: one sample per video frame (the paper's). "
                        "Like --prediction-type and --temporal-kernel it overrides the --config's value")
    m.add_argument("--samples-per-beat", type=int, default=8)
    m.add_argument("--n-frames", type=int, default=None,
                   help="window length N: frames, or samples in beat time (default: the config's; beats: "
                        "4 beats' worth)")
    m.add_argument("--prediction-type", choices=("epsilon", "v_prediction"), default="v_prediction",
                   help="v: motion as small as SynthDance's is timed by the music on the toy rung, epsilon's is "
                        "not (docs/diffusion_lab_log.md)")
    m.add_argument("--temporal-kernel", type=int, default=3,
                   help="residual temporal convolution in every res block (0: off, the models before it)")
    m.add_argument("--flow-scale", default="auto",
                   help="multiplier mapping flows into [-1, 1]: a number, or 'auto' (1 / the 99.9th percentile "
                        "of |flow| in the targets, clipped to [1, 50])")
    m.add_argument("--flow-power", type=float, default=0.5,
                   help="model space flow = sign(f) |scale f| ** power: < 1 lifts the many small motions above "
                        "the noise (1: linear, as models before it)")
    m.add_argument("--no-beat-features", action="store_true", help="ablation: no per-frame beat features")
    o = p.add_argument_group("optimisation")
    add_common_training_args(
        o, ("--batch-size", "--lr", "--adam-betas", "--lr-milestones", "--lr-gamma", "--warmup-steps",
            "--max-steps", "--epochs"),
        batch_size={"default": 8, "help": "windows per step per process"}, lr={"help": "Adam learning rate"},
        adam_betas={"default": (0.9, 0.999)}, warmup_steps={"default": 100},
        lr_milestones={"help": "fractions of training where lr is multiplied by --lr-gamma "
                               "(paper: 100,150,200 of 250 epochs)"})
    o.add_argument("--windows-per-ref", type=int, default=4, help="windows drawn per cached reference per epoch")
    add_common_training_args(o, ("--ema-decay", "--grad-clip", "--mixed-precision", "--seed"),
                             grad_clip={"default": 1.0})
    c = p.add_argument_group("conditioning")
    c.add_argument("--p-uncond", type=float, default=None, help="guidance dropout (default: the config's)")
    c.add_argument("--p-known", type=float, default=0.8, help="probability of a known prefix")
    c.add_argument("--p-first", type=float, default=0.3, help="probability of a window starting at its reference")
    c.add_argument("--max-known", type=int, default=None, help="longest known prefix (default: N/2)")
    r = p.add_argument_group("output")
    add_common_training_args(
        r, ("--out", "--resume", "--init-weights", "--stop-at-step", "--max-minutes", "--checkpoint-every",
            "--keep-checkpoints", "--sample-every", "--num-samples"),
        stop_at_step={"help": "save and exit at this step (resume later)"},
        sample_every={"default": 1000, "help": "steps between sample videos (0: off)"},
        num_samples={"default": 2, "help": "videos per sample round"})
    r.add_argument("--sample-frames", type=int, default=None, help="frames per sample video (default: 2N)")
    r.add_argument("--sample-sampler", choices=SAMPLERS, default="dpm++")
    r.add_argument("--sample-steps", type=int, default=25)
    r.add_argument("--guidance-scale", type=float, default=1.5)
    add_common_training_args(r, ("--log-every", "--threads", "--no-progress"),
                             threads={"help": "torch CPU threads"})
    return p


# ---------------------------------------------------------------------------------- data


class DataBundle:
    """Videos, flow targets, music tables and the sample set, built once before training."""

    def __init__(self, args: argparse.Namespace, flow_ae: Any, identity: dict, encoder: Any, n_frames: int,
                 progress: bool, beat_time: bool = False) -> None:
        from dabfusion.data.dataset import AISTVideos
        from dabfusion.data.frame_cache import default_cache_dir
        from dabfusion.data.music_bank import MusicBank

        size = flow_ae.image_size
        common = dict(split_spec=args.split, fps=args.fps, size=size, cache_dir=args.cache_dir, progress=progress)
        self.train = AISTVideos(args.data, split="train", **common)
        try:
            self.held = AISTVideos(args.data, split="test", **common)
        except Exception as e:  # noqa: BLE001 - e.g. an all-train split: samples come from train
            log.info("no held-out part for sample videos (%s); using training videos", e)
            self.held = None
        cache_root = Path(args.target_cache) if args.target_cache else Path(
            args.cache_dir if args.cache_dir else default_cache_dir(args.data))
        if beat_time:  # flows from each reference over a whole evaluation clip (8 s), references every 4 s
            longest = max(v.n_frames for v in self.train.videos)
            span = args.ref_span or min(int(round(BEAT_TIME_SPAN_SECONDS * args.fps)), longest)
            hop = args.ref_hop or max(args.start_hop, span // 2 // args.start_hop * args.start_hop)
        else:
            span = args.ref_span or 2 * n_frames
            hop = args.ref_hop or span
        spec = TargetSpec(n_frames=1 if beat_time else n_frames, ref_hop=hop, ref_span=span, start_hop=args.start_hop)
        self.targets = build_flow_targets(self.train, flow_ae, identity, cache_root, spec, progress=progress)
        files = {v.record.name.music: v.record.music_path for v in self.train.videos}
        sample_src = self.held if self.held is not None else self.train
        files.update({v.record.name.music: v.record.music_path for v in sample_src.videos})
        self.bank = MusicBank(files, args.audio_sample_rate)
        if beat_time:
            from dabfusion.diffusion.beat_time import BeatMusic

            self.music = {t: BeatMusic(encoder, self.bank.tracks[t], self.bank.sample_rate, args.fps).precompute()
                          for t in sorted({v.track for v in self.targets.videos})}
        else:
            self.music = build_music_table(self.bank.tracks, self.bank.sample_rate, encoder, fps=args.fps,
                                           n_frames=n_frames, starts=needed_music_starts(self.targets),
                                           cache_root=cache_root, progress=progress)
        self.sample_src = sample_src
        self.desc = {"root": str(args.data), "split": args.split, "fps": args.fps, "size": size,
                     "train_videos": len(self.train.videos), "target_videos": len(self.targets.videos),
                     "train_tracks": self.train.tracks, "targets": str(self.targets.directory),
                     "target_spec": {"n_frames": spec.n_frames, "ref_hop": spec.ref_hop,
                                     "ref_span": spec.ref_span, "start_hop": spec.start_hop}}


def resolve_flow_scale(value: str, targets: Any) -> tuple[float, dict]:
    """``auto``: the 99.9th percentile of |flow| maps to 1 (so thresholding clips ~0.1% of values);
    ``--flow-power`` then decides how far the many small motions are lifted above the noise."""
    stats = targets.flow_statistics()
    if str(value).lower() == "auto":
        q = stats["abs_q0.999"]
        scale = float(np.clip(1.0 / max(q, 1e-6), 1.0, 50.0))
        return round(scale, 4), stats
    return float(value), stats


# ---------------------------------------------------------------------------------- training


class Trainer(StageTrainer):
    """The diffusion's parts of the shared loop: cached flow targets and music tables, the
    denoising loss, and sample videos with their music."""

    log = log
    export_name = EXPORT_NAME
    title = "flow diffusion"
    progress_desc = "diffusion"
    collate_fn = staticmethod(collate)

    def build(self) -> None:
        from dabfusion.flow_ae import FlowAE

        args, acc = self.args, self.accelerator
        progress = self.main and not args.no_progress
        self.flow_ae = FlowAE.from_checkpoint(args.flow_ae, device=acc.device)
        self.identity = flow_ae_identity(args.flow_ae)
        self.encoder = build_music_encoder(args)
        base = get_config(args.config)
        beat_time = args.time_base == "beats"
        default_n = BEAT_TIME_WINDOW_BEATS * args.samples_per_beat if beat_time else base.n_frames
        n_frames = int(args.n_frames or default_n)
        with acc.main_process_first():  # one process computes the cached targets, the others read them
            self.data = DataBundle(args, self.flow_ae, self.identity, self.encoder, n_frames, progress, beat_time)
        scale, self.flow_stats = resolve_flow_scale(args.flow_scale, self.data.targets)
        changes: dict[str, Any] = {"n_frames": n_frames, "flow_scale": scale, "flow_power": args.flow_power,
                                   "time_base": args.time_base, "samples_per_beat": args.samples_per_beat}
        changes["prediction_type"] = args.prediction_type
        changes["temporal_kernel"] = args.temporal_kernel
        if args.p_uncond is not None:
            changes["cond_drop_prob"] = args.p_uncond
        config = base.replace(**changes).with_flow_ae(self.identity)
        config = config.with_music(self.encoder.spec, beat_features=not args.no_beat_features)
        if args.no_beat_features:
            config = config.replace(name=f"{config.name}-nobeats")
        self.config: DiffusionConfig = config
        self.model = UNet3D(config)
        self.scheduler = training_scheduler(config)

        if beat_time:
            self.train_ds = BeatWindowDataset(self.data.targets, self.data.music, fps=args.fps,
                                              samples_per_beat=config.samples_per_beat, n_samples=config.n_frames,
                                              flow_scale=config.flow_scale, flow_power=config.flow_power,
                                              windows_per_ref=args.windows_per_ref, p_first=args.p_first,
                                              p_drop=config.cond_drop_prob, seed=args.seed)
        else:
            self.train_ds = FlowWindowDataset(self.data.targets, self.data.music, flow_scale=config.flow_scale,
                                              flow_power=config.flow_power,
                                              windows_per_ref=args.windows_per_ref, p_first=args.p_first,
                                              p_known=args.p_known if config.known_frames else 0.0,
                                              max_known=args.max_known, p_drop=config.cond_drop_prob,
                                              seed=args.seed)

    def loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = diffusion_loss(self.model, self.scheduler, self.config, batch, generator=self.step_generator(),
                              device=self.accelerator.device, autocast=self.accelerator.autocast)
        return loss, {}

    def batch_size_of(self, batch: dict[str, Any]) -> int:
        return batch["x0"].shape[0]

    def timing_columns(self, elapsed: float, items: int, steps: int) -> dict[str, float]:
        return {"windows_per_s": items / max(elapsed, 1e-9), "s_per_step": elapsed / steps}

    def export(self) -> None:
        extra = {**self.export_extra(), "data": self.data.desc, "flow_stats": self.flow_stats,
                 "training": {"p_known": self.args.p_known, "p_first": self.args.p_first,
                              "max_known": getattr(self.train_ds, "max_known", 0),
                              "windows_per_ref": self.args.windows_per_ref}}
        save_diffusion(self.out / EXPORT_NAME, self.ema.model, extra)

    @torch.no_grad()
    def write_samples(self) -> None:
        from dabfusion.media.video import write_mp4
        from dabfusion.pipeline import DabFusionPipeline

        src = self.data.sample_src
        n = self.config.n_frames
        frames_total = int(self.args.sample_frames or 2 * n)
        model = self.ema.model.eval()
        pipe = DabFusionPipeline.from_parts(self.flow_ae, model, self.encoder, fps=self.args.fps,
                                            name=f"step {self.step}")
        settings = pipe.settings(sampler=self.args.sample_sampler, steps=self.args.sample_steps,
                                 guidance=self.args.guidance_scale)
        for k in range(min(self.args.num_samples, len(src.videos))):
            vi = k * max(1, len(src.videos) // max(1, self.args.num_samples))
            rec = src.videos[vi]
            gt = np.asarray(src.video_frames(vi)[:frames_total])
            length = gt.shape[0]
            track = rec.record.name.music
            ref = pipe.encode_reference(gt[0])
            music = pipe.encode_music(self.data.bank.tracks[track], self.data.bank.sample_rate)
            flows = pipe.sample_flows(ref, music, n_frames=length, settings=replace(settings, seed=self.args.seed + k))
            video = pipe.render(ref, flows)
            both = np.concatenate([video, gt[:length]], axis=2)  # generated | ground truth
            seg = self.data.bank.segment(track, 0.0, self.data.bank.n_samples(length / self.args.fps))
            path = self.out / "samples" / f"step_{self.step:08d}_{rec.record.name.stem}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_mp4(path, both, self.args.fps, audio=seg, sample_rate=self.data.bank.sample_rate,
                      preset="veryfast")
        model.train(False)

    def describe(self) -> None:
        args, acc = self.args, self.accelerator
        log.info("flow diffusion %s: %s params, %d frames of %dx%d latents (z0 %d ch), flow_scale %.3g, "
                 "flow_power %g, music %d + beats %s", self.config.name, f"{count_parameters(self.unwrapped()):,}",
                 self.config.n_frames, self.config.latent_size, self.config.latent_size,
                 self.config.latent_channels, self.config.flow_scale, self.config.flow_power, self.config.music_dim,
                 self.config.beat_dim if self.config.uses_beats else "off")
        log.info("data: %s", self.data.desc)
        log.info("%d steps of %d windows x %d processes, %d batches per epoch, device %s",
                 self.total_steps, args.batch_size, acc.num_processes, self.sampler.batches_per_epoch, acc.device)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return train_main(Trainer, build_parser(), argv)


if __name__ == "__main__":
    main()
