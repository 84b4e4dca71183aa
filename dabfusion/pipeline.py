"""Image + music -> dancing frames -> MP4 with the music: the stages the CLI and the nodes share.

    reference image ─► prepare_reference ─► encode_reference ─► z0 ──────────────┐
      (optional mask / background: SegmentPerson places the person on a start frame)   │
    music ─► music_clip (encoder of the model) ───────► sample_flows ─► flows, occlusions
                                                                        └─► decode_frames ─► frames
    frames + music ─► write_mp4

Every stage is a plain function over a :class:`~dabfusion.model_bundle.ModelBundle`, so the
ComfyUI nodes are thin adapters (one stage each) and :func:`generate_video` is the CLI's whole
job. Long clips are generated in overlapping windows that all warp the *original* reference
latent (:func:`dabfusion.diffusion.generate_flows`), so any length works without chaining.
Progress is reported through ``progress(done, total)`` callables; an exception raised in one
(ComfyUI's interrupt) stops the work.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import DabFusionError, MediaError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], Any]
#: Sampler names the CLI and the nodes offer (``dpmpp`` is accepted as an alias of ``dpm++``).
SAMPLERS = ("dpm++", "ddim", "ddpm")
MIN_IMAGE_SIDE = 16
#: Peak amplitude below which music counts as silent (the beat analysis finds nothing in it).
SILENCE_PEAK = 1e-4


# ------------------------------------------------------------------------------------ value types


@dataclass
class MusicClip:
    """Music ready to condition a model: the audio, the model's encoder and a summary of the clip.

    ``wave`` float32 ``[C, S]`` at ``sample_rate``; frame ``i`` of a generated clip shows time
    ``i / fps`` of it. ``summary`` is the encoder's embedding of the whole clip (tempo, beats);
    the windows a sampler needs are encoded from ``wave`` when it runs (the beat analysis is
    cached by the encoder, so that costs one analysis).
    """

    encoder: Any
    wave: np.ndarray
    sample_rate: int
    summary: Any

    @property
    def duration(self) -> float:
        return self.wave.shape[-1] / float(self.sample_rate)

    @property
    def spec(self) -> dict:
        return self.encoder.spec

    def describe(self) -> str:
        return (f"{self.duration:.2f} s of music, tempo {self.summary.tempo:.1f} BPM, "
                f"{len(self.summary.beats)} beats")


@dataclass
class ReferenceLatent:
    """The reference frame (uint8 ``[S, S, 3]``) and its latent z0 ``[1, C, h, w]``."""

    z0: Any
    image: np.ndarray
    model_name: str
    flow_ae_file: str


@dataclass
class FlowLatent:
    """Generated latent flows ``[N, 2, h, w]`` and occlusions ``[N, 1, h, w]`` (CPU float32)."""

    flow: Any
    occlusion: Any
    fps: float
    seed: int
    window: int
    overlap: int
    starts: list[int] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return int(self.flow.shape[0])


@dataclass
class Generation:
    """What :func:`generate` returns: frames uint8 ``[N, S, S, 3]`` and the music to play with them."""

    frames: np.ndarray
    fps: float
    audio: np.ndarray
    sample_rate: int
    reference: np.ndarray
    flows: FlowLatent


# ------------------------------------------------------------------------------------ checks


def check_sampler(name: str) -> str:
    """Canonical sampler name, or a clear error listing the choices."""
    from .diffusion.schedule import canonical_sampler

    try:
        return canonical_sampler(name)
    except ValueError:
        raise DabFusionError(f"Unknown sampler {name!r}: use one of {', '.join(SAMPLERS)} (or dpmpp).") from None


def check_not_silent(wave: np.ndarray, what: str = "the music") -> None:
    """Silence has no beats to dance to: refuse it with a message instead of a still video."""
    if wave.size == 0:
        raise MediaError(f"{what} is empty (no samples)")
    if float(np.max(np.abs(wave))) < SILENCE_PEAK:
        raise MediaError(f"{what} is silent (peak amplitude below {SILENCE_PEAK:g}): there is no beat to dance "
                         "to. Check the file, the start time and the duration.")


def resolve_length(*, fps: float, seconds: float | None = None, frames: int | None = None,
                   music_seconds: float | None = None) -> int:
    """Number of frames: ``frames`` if given, else ``seconds * fps``, else as long as the music."""
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise DabFusionError(f"fps must be a positive number, got {fps!r}")
    if frames is not None:
        if int(frames) < 1:
            raise DabFusionError(f"the number of frames must be at least 1, got {frames} (zero frames is no video)")
        return int(frames)
    if seconds is not None:
        if not (math.isfinite(seconds) and seconds > 0):
            raise DabFusionError(f"seconds must be > 0, got {seconds}")
        n = int(round(seconds * fps))
        if n < 1:
            raise DabFusionError(f"{seconds} s at {fps:g} fps is less than one frame")
        return n
    if music_seconds is None:
        raise DabFusionError("give the length in seconds or frames")
    n = int(math.floor(music_seconds * fps + 1e-6))
    if n < 1:
        raise DabFusionError(f"the music is {music_seconds:.3f} s long, less than one frame at {fps:g} fps")
    return n


# ------------------------------------------------------------------------------------ music


def music_clip(bundle: Any, wave: Any, sample_rate: int, *, what: str = "the music") -> MusicClip:
    """Check the audio and summarise it with the model's own music encoder."""
    from .media.image import to_numpy

    arr = to_numpy(wave).astype(np.float32, copy=False)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise MediaError(f"{what} must be [channels, samples], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise MediaError(f"{what} contains NaN or infinite samples")
    check_not_silent(arr, what)
    summary = bundle.music.encode(arr, int(sample_rate))
    return MusicClip(encoder=bundle.music, wave=np.ascontiguousarray(arr), sample_rate=int(sample_rate),
                     summary=summary)


def load_music(path: str | os.PathLike, *, start: float = 0.0, seconds: float | None = None,
               mono: bool = False) -> tuple[np.ndarray, int]:
    """``seconds`` of a music file from ``start`` (all of it after ``start`` if None), native rate."""
    from .media.audio import load_audio

    if start < 0:
        raise MediaError(f"start must be >= 0 seconds, got {start}")
    return load_audio(path, offset=float(start), duration=seconds, mono=mono)


# ------------------------------------------------------------------------------------ reference


def _rgba01(image: Any) -> np.ndarray:
    """Any image (uint8 / float, [H, W, C] or [1, H, W, C], C = 1..4) as float32 0..1 [H, W, C]."""
    from .media.image import to_float01, to_numpy

    arr = to_numpy(image)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise MediaError(f"the reference must be one image, got a batch of {arr.shape[0]}; pick one frame")
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4):
        raise MediaError(f"the reference image must be [H, W, C] with 1 to 4 channels, got shape {arr.shape}")
    if min(arr.shape[:2]) < MIN_IMAGE_SIDE:
        raise MediaError(f"the reference image is {arr.shape[1]}x{arr.shape[0]} pixels; it needs at least "
                         f"{MIN_IMAGE_SIDE} pixels a side (the model works at 128x128)")
    return to_float01(arr, "reference image")


def has_transparency(image: Any) -> bool:
    arr = _rgba01(image)
    return arr.shape[-1] in (2, 4) and float(arr[..., -1].min()) < 0.99


def prepare_reference(image: Any, size: int, *, mask: Any = None, background: Any = None, fit: str = "crop",
                      segment: bool | None = None, yolo_model: Any = None, sam_model: Any = None,
                      device: Any = None, **segment_kw: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The start frame uint8 ``[size, size, 3]`` (and the person's mask when one was made).

    Plain images are squared (``fit`` "crop" or "pad") and resized. With a ``mask`` of the person,
    a ``background``, detection models, or a transparent image (``segment`` None: decide from
    those), the person is cut out and placed on the background like the training dancers
    (:class:`dabfusion.segment.SegmentPerson`).
    """
    from .media.image import channels_to_rgb, resize_square, to_uint8

    rgba = _rgba01(image)
    if segment is None:
        segment = (mask is not None or background is not None or yolo_model is not None or sam_model is not None
                   or (rgba.shape[-1] in (2, 4) and float(rgba[..., -1].min()) < 0.99))
    if not segment:
        rgb = to_uint8(channels_to_rgb(rgba, what="reference image"))
        return resize_square(rgb, int(size), fit), None
    from .segment import SegmentPerson

    seg = SegmentPerson(yolo_model, sam_model, device=device)
    result = seg(rgba, mask, background="studio" if background is None else background, size=int(size), fit=fit,
                 **segment_kw)
    log.info("start frame: %s", result.describe())
    return result.frame, result.mask


def encode_reference(bundle: Any, frame: Any) -> ReferenceLatent:
    """z0 of a start frame; frames of another size are squared and resized to the model's size."""
    import torch

    from .media.image import channels_to_rgb, resize_square, to_uint8

    rgb = to_uint8(channels_to_rgb(_rgba01(frame), what="reference image"))
    size = bundle.image_size
    if rgb.shape[:2] != (size, size):
        rgb = resize_square(rgb, size, "crop")
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    z0 = bundle.flow_ae.encode(x)
    return ReferenceLatent(z0=z0, image=rgb, model_name=bundle.name, flow_ae_file=str(bundle.files.flow_ae))


def _check_same_model(bundle: Any, ref: ReferenceLatent) -> None:
    if ref.flow_ae_file != str(bundle.files.flow_ae):
        raise DabFusionError(f"the reference latent was encoded by the model '{ref.model_name}' "
                             f"({Path(ref.flow_ae_file).parent}), not by '{bundle.name}' ({bundle.files.root}); "
                             "encode it with the same model you sample with")


# ------------------------------------------------------------------------------------ sampling


def sample_flows(bundle: Any, ref: ReferenceLatent, music: MusicClip, *, n_frames: int, fps: float | None = None,
                 sampler: str = "dpm++", steps: int | None = None, guidance: float = 1.0, seed: int = 0,
                 overlap: int | None = None, progress: Progress | None = None) -> FlowLatent:
    """Latent flows for ``n_frames`` frames of the music from its start (any length, in windows)."""
    import torch

    from .diffusion import DEFAULT_STEPS, MusicWindows, generate_flows
    from .music import check_compatible

    _check_same_model(bundle, ref)
    check_compatible(bundle.music.spec, music.spec, what=f"The model '{bundle.name}'")
    name = check_sampler(sampler)
    fps = float(fps or bundle.fps)
    n_frames = int(n_frames)
    if n_frames < 1:
        raise DabFusionError(f"the number of frames must be at least 1, got {n_frames}")
    steps = int(steps or DEFAULT_STEPS[name])
    if steps < 1:
        raise DabFusionError(f"steps must be at least 1, got {steps}")
    if not math.isfinite(guidance) or guidance < 0:
        raise DabFusionError(f"guidance must be >= 0, got {guidance}")
    window = bundle.window
    if overlap is not None and not 0 <= int(overlap) < window:
        raise DabFusionError(f"overlap must be between 0 and {window - 1} frames (the window is {window}), got {overlap}")
    if n_frames / fps > music.duration + 0.5 / fps:
        log.warning("%d frames at %g fps (%.2f s) run past the end of the music (%.2f s): the rest dances to silence",
                    n_frames, fps, n_frames / fps, music.duration)
    windows = MusicWindows(music.encoder, music.wave, music.sample_rate, fps)
    generator = torch.Generator().manual_seed(int(seed) % (2 ** 63))
    out = generate_flows(bundle.diffusion, z0=ref.z0, n_frames=n_frames, music=windows, overlap=overlap,
                         sampler=name, num_inference_steps=steps, guidance_scale=float(guidance),
                         generator=generator, callback=progress)
    return FlowLatent(flow=out.flow[0].float().cpu(), occlusion=out.occlusion[0].float().cpu(), fps=fps,
                      seed=int(seed), window=out.window, overlap=out.overlap, starts=list(out.starts))


def decode_frames(bundle: Any, ref: ReferenceLatent, flows: FlowLatent, *, chunk: int = 16,
                  progress: Progress | None = None) -> np.ndarray:
    """``decode(warp(z0, flow_i, occlusion_i))`` for every frame: uint8 ``[N, S, S, 3]``."""
    from .flow_ae import render_video

    _check_same_model(bundle, ref)
    n = flows.n_frames
    if n < 1:
        raise DabFusionError("there are no frames to decode (zero frames)")
    latent = tuple(bundle.diffusion.config.latent_size for _ in range(2))
    if tuple(flows.flow.shape[-2:]) != latent:
        raise DabFusionError(f"the flows are {tuple(flows.flow.shape[-2:])} but the model's latent is {latent}; "
                             "sample them with the same model")
    return render_video(bundle.flow_ae, ref.z0, flows.flow, flows.occlusion, chunk=chunk, progress=progress)


# ------------------------------------------------------------------------------------ all of it


def generate(bundle: Any, image: Any, wave: Any, sample_rate: int, *, seconds: float | None = None,
             frames: int | None = None, fps: float | None = None, sampler: str | None = None,
             steps: int | None = None, guidance: float | None = None, seed: int = 0, overlap: int | None = None,
             mask: Any = None, background: Any = None, fit: str = "crop", yolo_model: Any = None,
             sam_model: Any = None, progress: Progress | None = None) -> Generation:
    """Make the person in ``image`` dance to ``wave`` (``[C, S]`` at ``sample_rate``, from its start).

    Unset sampling settings take the bundle's recommended defaults, then DPM-Solver++ with its
    default step count and guidance 1.
    """
    defaults = bundle.defaults
    sampler = sampler or defaults.get("sampler", "dpm++")
    steps = steps or defaults.get("steps")
    guidance = float(guidance if guidance is not None else defaults.get("guidance", 1.0))
    fps = float(fps or bundle.fps)
    music = music_clip(bundle, wave, sample_rate)
    n = resolve_length(fps=fps, seconds=seconds, frames=frames, music_seconds=music.duration)
    start_frame, _ = prepare_reference(image, bundle.image_size, mask=mask, background=background, fit=fit,
                                       yolo_model=yolo_model, sam_model=sam_model, device=bundle.device)
    ref = encode_reference(bundle, start_frame)
    steps_name = check_sampler(sampler)
    from .diffusion import DEFAULT_STEPS

    n_steps = int(steps or DEFAULT_STEPS[steps_name])
    sampling = sampling_units(bundle, n, n_steps, overlap)
    decode_units = math.ceil(n / 16)
    total = sampling + decode_units

    def sampling_progress(done: int, _total: int) -> None:
        if progress is not None:
            progress(done, total)

    def decoding_progress(done: int, _total: int) -> None:
        if progress is not None:
            progress(sampling + done, total)

    flows = sample_flows(bundle, ref, music, n_frames=n, fps=fps, sampler=steps_name, steps=n_steps,
                         guidance=guidance, seed=seed, overlap=overlap, progress=sampling_progress)
    video = decode_frames(bundle, ref, flows, progress=decoding_progress)
    return Generation(frames=video, fps=fps, audio=music.wave, sample_rate=music.sample_rate,
                      reference=ref.image, flows=flows)


def sampling_units(bundle: Any, n_frames: int, steps: int, overlap: int | None) -> int:
    """Progress units of sampling ``n_frames``: U-Net steps times windows in turn (frame time), or
    the steps alone (beat time: all windows of the clip are denoised together)."""
    from .diffusion import plan_windows
    from .diffusion.long_video import default_overlap

    config = bundle.diffusion.config
    if config.in_beat_time:
        return int(steps)
    k = int(overlap if overlap is not None else default_overlap(config, bundle.window))
    return len(plan_windows(int(n_frames), bundle.window, k)) * int(steps)


def write_generation(path: str | os.PathLike, gen: Generation, *, metadata: Mapping[str, str] | None = None,
                     crf: int = 18) -> Path:
    """The frames as an h264 MP4 with the music (AAC), trimmed or padded to the video's length."""
    from .media.video import write_mp4

    return write_mp4(path, gen.frames, gen.fps, audio=gen.audio, sample_rate=gen.sample_rate, crf=crf,
                     metadata=metadata)


def generate_video(image: str | os.PathLike, music: str | os.PathLike, out: str | os.PathLike, *,
                   checkpoint: str | os.PathLike | None = None, device: Any = None, start: float = 0.0,
                   seconds: float | None = None, frames: int | None = None, fps: float | None = None,
                   sampler: str | None = None, steps: int | None = None, guidance: float | None = None,
                   seed: int = 0, overlap: int | None = None, mask: str | os.PathLike | None = None,
                   background: Any = None, fit: str = "crop", yolo_model: Any = None, sam_model: Any = None,
                   search_dirs: Mapping[str, Sequence[str | os.PathLike]] | None = None,
                   progress: Progress | None = None, bundle: Any = None) -> Path:
    """Files in, MP4 out: the whole product in one call (what ``python -m dabfusion generate`` runs)."""
    from .media.image import load_image, load_image_with_alpha
    from .model_bundle import load_bundle

    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".m4v", ".mov", ".mkv"):
        raise MediaError(f"the output must be a video file (.mp4), got {out}")
    try:  # before any work: a bad --out must not cost a whole generation, nor end in a traceback
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MediaError(f"cannot create the output folder {out.parent} ({e.strerror or e}): choose an --out "
                         "in a folder you can write") from None
    if not os.access(out.parent, os.W_OK):
        raise MediaError(f"the output folder {out.parent} is not writable: choose an --out in a folder you can write")
    rgb, alpha = load_image_with_alpha(image)
    picture = rgb if alpha is None else np.concatenate([rgb, (alpha * 255 + 0.5).astype(np.uint8)[..., None]], -1)
    person = None
    if mask is not None:
        person = load_image(mask)[..., 0].astype(np.float32) / 255.0  # white = person
    if bundle is None:
        bundle = load_bundle(checkpoint, device=resolve_device(device), search_dirs=search_dirs)
    fps_ = float(fps or bundle.fps)
    # Read only what is needed of a long track: the requested span and one more second, so the beat
    # tracker sees the beat that closes the clip (the MP4's audio is cut to the video's length).
    want = frames / fps_ if frames is not None else seconds
    wave, sr = load_music(music, start=start, seconds=None if want is None else float(want) + 1.0)
    gen = generate(bundle, picture, wave, sr, seconds=seconds, frames=frames, fps=fps_, sampler=sampler,
                   steps=steps, guidance=guidance, seed=seed, overlap=overlap, mask=person, background=background,
                   fit=fit, yolo_model=yolo_model, sam_model=sam_model, progress=progress)
    meta = {"comment": f"Dance Any Beat (DabFusion): model {bundle.name}, seed {seed}",
            "dabfusion": _json({"model": bundle.name, "seed": seed, "fps": gen.fps, "frames": len(gen.frames),
                                "start": start, "image": os.fspath(image), "music": os.fspath(music)})}
    return write_generation(out, gen, metadata=meta)


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, sort_keys=True)


def resolve_device(device: Any) -> str:
    """"auto"/None: CUDA when there is one, else the CPU; a clear error for a device that is not there."""
    import torch

    if device is None or str(device).lower() in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(str(device))
    except (RuntimeError, ValueError):
        raise DabFusionError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise DabFusionError(f"device {device!r} is not available on this machine: use auto or cpu")
    return str(dev)
