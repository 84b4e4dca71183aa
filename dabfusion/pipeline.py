"""Image + music -> dancing frames -> MP4: the one object the CLI, the nodes, the evaluators and the
trainer's sample videos compose.

    pipe = DabFusionPipeline.from_folder("models/dabfusion/my_model", device="cuda")  # None: built-in
    gen = pipe(image, wave, sample_rate, seconds=8)                   # all of it: frames + music

    music = pipe.encode_music(wave, sample_rate)                      # step by step, as the nodes do
    ref = pipe.encode_reference(image)
    flows = pipe.sample_flows(ref, music, n_frames=240, progress=callback)
    frames = pipe.render(ref, flows)

It holds the flow AE, the diffusion model and the music encoder the diffusion model was trained
with (checked against each other when loaded); it is built from a model folder
(:meth:`~DabFusionPipeline.from_folder`), from separate checkpoints
(:meth:`~DabFusionPipeline.from_checkpoints`) or from loaded parts
(:meth:`~DabFusionPipeline.from_parts`: a trainer's EMA model, a toy). Sampling settings the
caller leaves unset take the model folder's recommendations, then :data:`SAMPLING_DEFAULTS`
(the one place for them). Long clips are generated in overlapping windows that all warp the
*original* reference latent, so any length works without chaining. Progress is reported through
``progress(done, total)`` callables; an exception raised in one (ComfyUI's interrupt) stops the work.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import DabFusionError, MediaError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], Any]
MIN_IMAGE_SIDE = 16
#: Peak amplitude below which music counts as silent (the beat analysis finds nothing in it).
SILENCE_PEAK = 1e-4
#: Frames drawn at once when rendering (bounded memory).
RENDER_CHUNK = 16


# ------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class SamplingSettings:
    """How flows are sampled. ``steps`` None = the sampler's default; ``overlap`` None = the
    model's default (:func:`dabfusion.diffusion.default_overlap`)."""

    sampler: str = "dpm++"
    steps: int | None = None
    guidance: float = 1.0
    seed: int = 0
    overlap: int | None = None

    def __post_init__(self) -> None:  # "dpmpp" and other accepted spellings become the canonical name
        object.__setattr__(self, "sampler", check_sampler(self.sampler))

    @property
    def n_steps(self) -> int:
        from .diffusion import DEFAULT_STEPS

        return int(self.steps or DEFAULT_STEPS[self.sampler])

    def describe(self, from_model: Sequence[str] = ()) -> str:
        """What is sampled with, for a report: ``"dpm++, 25 steps, guidance 1.5, seed 0"``; the settings
        named in ``from_model`` (sampler, steps, guidance) are marked as the model's recommendation."""
        mark = {k: " (model default)" if k in from_model else "" for k in ("sampler", "steps", "guidance")}
        return (f"{self.sampler}{mark['sampler']}, {self.n_steps} steps{mark['steps']}, "
                f"guidance {self.guidance:g}{mark['guidance']}, seed {self.seed}")


def sampler_names() -> tuple[str, ...]:
    """Sampler names the CLI and the nodes offer (``dpmpp`` is accepted as an alias of ``dpm++``)."""
    from .diffusion.schedule import SAMPLERS

    return SAMPLERS


def check_sampler(name: str) -> str:
    """Canonical sampler name, or a clear error listing the choices."""
    from .diffusion.schedule import canonical_sampler

    try:
        return canonical_sampler(name)
    except ValueError:
        raise DabFusionError(f"Unknown sampler {name!r}: use one of {', '.join(sampler_names())} "
                             "(or dpmpp).") from None


#: What a caller gets for every setting it leaves unset and the model folder does not recommend.
SAMPLING_DEFAULTS = SamplingSettings()


# ------------------------------------------------------------------------------------ value types


@dataclass
class MusicClip:
    """Music ready to condition a model: the audio and the model's encoder.

    ``wave`` float32 ``[C, S]`` at ``sample_rate``; frame ``i`` of a generated clip shows time
    ``offset + i / fps`` of it (a negative ``offset`` delays the music: the clip starts in
    silence). ``summary`` is the encoder's embedding of the whole clip (tempo, beats), computed
    on first use (the beat analysis is cached by the encoder, so the windows a sampler needs cost
    no second analysis).

    ``beat_edit``: the creator's :class:`dabfusion.music.beat_grid.BeatGridEdit` of the tracker's grid
    (offset, tempo halve/double, a BPM, a beat list; times in this ``wave``'s seconds), or None. It is the
    one grid of the run: the summary (tempo, beats), the sampler's windows and beat clock, and best-of-N
    scoring all read :attr:`beat_analysis`.
    """

    encoder: Any
    wave: np.ndarray
    sample_rate: int
    offset: float = 0.0
    beat_edit: Any = None

    @cached_property
    def summary(self) -> Any:
        return self.analyze()

    def analyze(self, progress: Progress | None = None) -> Any:
        """The encoder's embedding of the whole clip (tempo, beats), with the encoder's stage-by-stage
        ``progress``; the encoder caches it, so :attr:`summary` and the sampler's windows reuse it."""
        kw = {} if self.beat_edit is None else {"beat_edit": self.beat_edit}
        return self.encoder.encode(self.wave, self.sample_rate, progress=progress, **kw)

    @property
    def beat_analysis(self) -> Any:
        """The beat grid of the run: the tracker's analysis of the whole clip with :attr:`beat_edit` applied."""
        if hasattr(self.encoder, "beat_analysis"):
            kw = {} if self.beat_edit is None else {"beat_edit": self.beat_edit}
            return self.encoder.beat_analysis(self.wave, self.sample_rate, **kw)
        from .music.beat_grid import edited_analysis

        return edited_analysis(self.wave, self.sample_rate, self.beat_edit)

    @property
    def duration(self) -> float:
        return self.wave.shape[-1] / float(self.sample_rate)

    @property
    def spec(self) -> dict:
        return self.encoder.spec

    def windows(self, fps: float) -> Any:
        """The music as the diffusion sampler reads it (:class:`dabfusion.diffusion.MusicWindows`)."""
        from .diffusion import MusicWindows

        return MusicWindows(self.encoder, self.wave, self.sample_rate, fps, self.offset, beat_edit=self.beat_edit)

    def describe(self) -> str:
        grid = "" if self.beat_edit is None else f" (beat grid: {self.beat_edit.describe()})"
        return (f"{self.duration:.2f} s of music, tempo {self.summary.tempo:.1f} BPM, "
                f"{len(self.summary.beats)} beats{grid}")


@dataclass
class ReferenceLatent:
    """The reference frame (uint8 ``[S, S, 3]``) and its latent z0 ``[1, C, h, w]``."""

    z0: Any
    image: np.ndarray
    model_name: str
    flow_ae_file: str


@dataclass
class FlowLatent:
    """Generated latent flows ``[N, 2, h, w]`` and occlusions ``[N, 1, h, w]`` (CPU float32).

    ``starts``: window starts (frames, or beat-grid samples for a beat-time model); ``borders``:
    the frame steps ``i -> i + 1`` that cross a window border (where a seam would show).
    """

    flow: Any
    occlusion: Any
    fps: float
    seed: int
    window: int
    overlap: int
    starts: list[int] = field(default_factory=list)
    borders: list[int] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return int(self.flow.shape[0])


@dataclass
class Candidate:
    """One seed of a best-of-N draw and how well its motion follows the music (2D-MM Align); only
    the best candidate keeps its ``flows`` (re-sample any other from its seed)."""

    seed: int
    mm_align: float
    flows: FlowLatent | None


def _rank(c: Candidate) -> tuple[float, int]:
    """Sort key, best first: higher score, then lower seed; an undefined score last."""
    return (-c.mm_align if math.isfinite(c.mm_align) else math.inf, c.seed)


def _shifted(progress: Progress | None, offset: int, total: int) -> Progress | None:
    """One stage's ``progress(done, stage_total)`` as a share of a whole run: ``progress(offset + done, total)``."""
    return None if progress is None else (lambda done, _stage_total: progress(offset + done, total))


def describe_candidates(candidates: Sequence[Candidate]) -> str:
    """One line per seed, best first: what a user reads to pick or re-run a seed."""
    return "\n".join(f"{'best ' if i == 0 else '     '}seed {c.seed}: 2D-MM Align {c.mm_align:.3f}"
                     for i, c in enumerate(candidates))


@dataclass
class Generation:
    """What a whole run returns: frames uint8 ``[N, S, S, 3]`` (or a FrameStream of them) and the music."""

    frames: Any
    fps: float
    audio: np.ndarray
    sample_rate: int
    reference: np.ndarray
    flows: FlowLatent


# ------------------------------------------------------------------------------------ checks


def check_not_silent(wave: np.ndarray, what: str = "the music") -> None:
    """Silence has no beats to dance to: refuse it with a message instead of a still video."""
    if wave.size == 0:
        raise MediaError(f"{what} is empty (no samples)")
    if float(np.max(np.abs(wave))) < SILENCE_PEAK:
        raise MediaError(f"{what} is silent (peak amplitude below {SILENCE_PEAK:g}): there is no beat to dance "
                         "to. Check the file, the start time and the duration.")


def as_wave(wave: Any, what: str = "the music") -> np.ndarray:
    """Audio (numpy or torch; ``[S]``, ``[C, S]`` or ``[1, C, S]``) as float32 ``[C, S]``, checked."""
    if hasattr(wave, "detach"):
        wave = wave.detach().float().cpu().numpy()
    arr = np.asarray(wave, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise MediaError(f"{what} must be [channels, samples], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise MediaError(f"{what} contains NaN or infinite samples")
    check_not_silent(arr, what)
    return np.ascontiguousarray(arr)


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


def clamp_to_music(n_frames: int, *, fps: float, music_seconds: float) -> tuple[int, str]:
    """The one rule for a clip asked longer than its music: it ends with the music. Returns the number of
    frames to make and, when it was cut, a sentence saying so (the CLI logs it as a warning, the sampler
    node puts it in its report); ``music_seconds``: the music there is from the clip's start."""
    n_frames = int(n_frames)
    available = int(math.floor(music_seconds * fps + 1e-6))
    if n_frames <= available:
        return n_frames, ""
    if available < 1:
        raise DabFusionError(f"the music is {music_seconds:.3f} s long, less than one frame at {fps:g} fps")
    return available, (f"{n_frames} frames ({n_frames / fps:.2f} s) were asked for, but the music has only "
                       f"{music_seconds:.2f} s: the video ends with the music, {available} frames "
                       f"({available / fps:.2f} s)")


def load_music(path: str | os.PathLike, *, start: float = 0.0, seconds: float | None = None,
               mono: bool = False) -> tuple[np.ndarray, int]:
    """``seconds`` of a music file from ``start`` (all of it after ``start`` if None), native rate."""
    from .media.audio import load_audio

    if start < 0:
        raise MediaError(f"start must be >= 0 seconds, got {start}")
    return load_audio(path, offset=float(start), duration=seconds, mono=mono)


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


# ------------------------------------------------------------------------------------ the pipeline


class DabFusionPipeline:
    """A loaded, checked generator: ``flow_ae`` (:class:`~dabfusion.flow_ae.FlowAE`), ``diffusion``
    (:class:`~dabfusion.diffusion.UNet3D`) and ``music`` (:class:`~dabfusion.music.MusicEncoder`),
    and the steps that make a dance of them."""

    def __init__(self, flow_ae: Any, diffusion: Any, music: Any, *, name: str = "", fps: float | None = None,
                 defaults: Mapping[str, Any] | None = None, files: Any = None, header: Mapping | None = None) -> None:
        from .model_bundle import DEFAULT_FPS

        self.flow_ae, self.diffusion, self.music = flow_ae, diffusion, music
        self.files, self.header = files, dict(header or {})
        manifest = dict(getattr(files, "manifest", None) or {})
        self.name = name or (files.name if files is not None else "model")
        fps = fps or manifest.get("fps") or ((self.header.get("extra") or {}).get("data") or {}).get("fps")
        self.fps = float(fps) if fps else DEFAULT_FPS
        self.defaults = dict(defaults if defaults is not None else manifest.get("defaults") or {})
        # which flow AE encoded a reference: its file, or (built from parts) the object itself
        self.flow_ae_key = str(files.flow_ae) if files is not None else f"<flow AE object {id(flow_ae):x}>"

    # -------------------------------------------------------------- construction
    @classmethod
    def from_parts(cls, flow_ae: Any, diffusion: Any, music: Any, **kw: Any) -> "DabFusionPipeline":
        """From loaded parts (a trainer's EMA model, a toy); ``kw`` as the constructor's."""
        return cls(flow_ae, diffusion, music, **kw)

    @classmethod
    def from_files(cls, files: Any, *, device: Any = "cpu", dtype: Any = None,
                   search_dirs: Mapping[str, Sequence[str | os.PathLike]] | None = None,
                   fps: float | None = None, music: Any = None) -> "DabFusionPipeline":
        """From a :class:`~dabfusion.model_bundle.BundleFiles` (``music``: an encoder the caller built,
        checked against the diffusion model instead of rebuilt from its spec)."""
        from .model_bundle import load_parts

        parts = load_parts(files, device=device, dtype=dtype, search_dirs=search_dirs, music=music)
        return cls(parts.flow_ae, parts.diffusion, parts.music, files=files, header=parts.header, fps=fps)

    @classmethod
    def from_folder(cls, path: str | os.PathLike | None = None, *, device: Any = "cpu", dtype: Any = None,
                    search_dirs: Mapping[str, Sequence[str | os.PathLike]] | None = None,
                    cached: bool = False) -> "DabFusionPipeline":
        """A model folder (``None``: the built-in demo model), loaded and cross-checked.

        Raises :class:`~dabfusion.errors.ModelFileError` for missing files and
        :class:`~dabfusion.errors.ConfigMismatchError` when the diffusion model was trained with
        another flow AE or music encoder. ``cached``: reuse the last pipelines loaded from the same,
        unchanged files (what ComfyUI's loader node wants).
        """
        from .model_bundle import demo_files, find_bundle_files

        files = demo_files() if path is None else find_bundle_files(path)
        if not cached:
            return cls.from_files(files, device=device, dtype=dtype, search_dirs=search_dirs)
        return _PIPELINE_CACHE.get(files, device=device, dtype=dtype, search_dirs=search_dirs,
                                   load=lambda: cls.from_files(files, device=device, dtype=dtype,
                                                               search_dirs=search_dirs))

    @classmethod
    def from_checkpoints(cls, flow_ae: str | os.PathLike, diffusion: str | os.PathLike, *,
                         adapters: Mapping[str, str | os.PathLike] | None = None,
                         encoders: Mapping[str, str | os.PathLike] | None = None, device: Any = "cpu",
                         search_dirs: Mapping[str, Sequence[str | os.PathLike]] | None = None,
                         fps: float | None = None, music: Any = None) -> "DabFusionPipeline":
        """Checkpoints that live apart (a training run's exports), with the music adapters and frozen
        encoder files (branch -> path) the diffusion model's music spec needs, or the ``music``
        encoder the run built itself."""
        from .model_bundle import separate_files

        files = separate_files(flow_ae, diffusion, adapters=adapters, encoders=encoders)
        return cls.from_files(files, device=device, search_dirs=search_dirs, fps=fps, music=music)

    def with_diffusion(self, path: str | os.PathLike, *,
                       search_dirs: Mapping[str, Sequence[str | os.PathLike]] | None = None) -> "DabFusionPipeline":
        """Another diffusion checkpoint on this pipeline's flow AE (an ablation), with the music encoder
        it was trained with (this one's when the spec is the same)."""
        from .model_bundle import BundleFiles, load_diffusion_for

        base = self.files
        if base is None:
            raise DabFusionError("this pipeline was built from parts, not files: load the other checkpoint "
                                 "with DabFusionPipeline.from_checkpoints instead")
        files = BundleFiles(base.root, base.flow_ae, Path(path).expanduser(), base.adapters, base.encoders, {})
        unet, music, header = load_diffusion_for(files, self.flow_ae, device=self.device, search_dirs=search_dirs,
                                                 music=self.music)
        return type(self)(self.flow_ae, unet, music, files=files, header=header, fps=self.fps,
                          defaults=self.defaults, name=Path(path).stem)

    # -------------------------------------------------------------- what it is
    @property
    def device(self) -> Any:
        return next(self.diffusion.parameters()).device

    #: The pipeline's parts that hold weights, in the order :meth:`torch_modules` and :meth:`to` name them.
    PARTS = ("flow_ae", "diffusion", "music")

    def torch_modules(self) -> dict[str, list[Any]]:
        """The torch modules holding each part's weights: ``flow_ae`` (the auto-encoder network),
        ``diffusion`` (the U-Net) and ``music`` (the music encoder's networks and adapters; none for a
        weight-free encoder). A model manager (ComfyUI's) moves these between devices."""
        import torch

        def modules(*objs: Any) -> list[Any]:
            return [m for m in objs if isinstance(m, torch.nn.Module)]

        music = [m for b in getattr(self.music, "branches", ()) for m in modules(b.encoder, b.adapter)]
        return {"flow_ae": modules(getattr(self.flow_ae, "model", self.flow_ae)), "diffusion": modules(self.diffusion),
                "music": music}

    def to(self, device: Any, *, parts: Sequence[str] = PARTS) -> "DabFusionPipeline":
        """Move these parts (all by default) to ``device``, in place; the flow AE and the music encoder
        follow their networks' device from then on."""
        for part in parts:
            if part not in self.PARTS:
                raise ValueError(f"unknown part {part!r}: one of {self.PARTS}")
            getattr(self, part).to(device)
        return self

    @property
    def config(self) -> Any:
        return self.diffusion.config

    @property
    def image_size(self) -> int:
        return int(self.flow_ae.image_size)

    @property
    def window(self) -> int:
        """Samples the diffusion model denoises at once (longer clips are made in windows): video
        frames, or beat-grid samples for a beat-time model."""
        return int(self.diffusion.config.n_frames)

    def default_overlap(self) -> int:
        from .diffusion import default_overlap

        return default_overlap(self.window, beat_time=self.config.in_beat_time)

    def describe(self) -> str:
        c = self.config
        unit = f"samples ({c.samples_per_beat} per beat, beat time)" if c.in_beat_time else "frames"
        return (f"DabFusion model '{self.name}': {self.image_size}x{self.image_size} frames, windows of "
                f"{self.window} {unit} at {self.fps:g} fps, latent {c.latent_channels}x{c.latent_size}x"
                f"{c.latent_size}, music branches {[b['name'] for b in self.music.spec['branches']]}, on {self.device}")

    def settings(self, *, sampler: str | None = None, steps: int | None = None, guidance: float | None = None,
                 seed: int = 0, overlap: int | None = None) -> SamplingSettings:
        """Sampling settings, checked: what the caller gave, else the model folder's recommendation,
        else :data:`SAMPLING_DEFAULTS`."""
        d, base = self.defaults, SAMPLING_DEFAULTS
        name = check_sampler(sampler or d.get("sampler") or base.sampler)
        recommended_for = d.get("sampler") or base.sampler  # the folder's steps are for its sampler only
        if steps is None and d.get("steps") is not None and name == check_sampler(recommended_for):
            steps = d["steps"]
        if steps is not None and int(steps) < 1:
            raise DabFusionError(f"steps must be at least 1, got {steps}")
        guidance = float(guidance if guidance is not None else d.get("guidance", base.guidance))
        if not math.isfinite(guidance) or guidance < 0:
            raise DabFusionError(f"guidance must be >= 0, got {guidance}")
        if overlap is not None and not 0 <= int(overlap) < self.window:
            raise DabFusionError(f"overlap must be between 0 and {self.window - 1} "
                                 f"({'beat-grid samples' if self.config.in_beat_time else 'frames'}; the window "
                                 f"is {self.window}), got {overlap}")
        return SamplingSettings(name, None if steps is None else int(steps), guidance, int(seed),
                                None if overlap is None else int(overlap))

    def from_model(self, settings: SamplingSettings, **given: Any) -> list[str]:
        """Which of ``settings`` (sampler, steps, guidance) came from the model folder's recommendation,
        for the caller's ``given`` values (None = left to the model): the folder's steps count only with
        its own sampler, as :meth:`settings` applies them."""
        d = self.defaults
        out = [k for k in ("sampler", "guidance") if given.get(k) is None and d.get(k) is not None]
        if given.get("steps") is None and d.get("steps") is not None and settings.steps == d["steps"] \
                and settings.sampler == check_sampler(d.get("sampler") or SAMPLING_DEFAULTS.sampler):
            out.append("steps")
        return out

    def sampling_units(self, n_frames: int, settings: SamplingSettings) -> int:
        """Progress units of sampling ``n_frames``: U-Net steps times windows in turn (frame time), or
        the steps alone (beat time: all windows of the clip are denoised together)."""
        from .diffusion import plan_windows

        if self.config.in_beat_time:
            return settings.n_steps
        k = settings.overlap if settings.overlap is not None else self.default_overlap()
        return len(plan_windows(int(n_frames), self.window, k)) * settings.n_steps

    # -------------------------------------------------------------- the steps
    def encode_music(self, wave: Any, sample_rate: int, *, offset: float = 0.0,
                     what: str = "the music", beat_edit: Any = None) -> MusicClip:
        """Check the audio (numpy or torch, ``[S]`` / ``[C, S]``) and wrap it with this model's encoder.

        ``beat_edit``: a :class:`dabfusion.music.beat_grid.BeatGridEdit` of the tracker's beat grid (times
        in this audio's seconds), used by everything that reads the clip's grid."""
        edit = None if beat_edit is None or beat_edit.is_identity else beat_edit
        return MusicClip(encoder=self.music, wave=as_wave(wave, what), sample_rate=int(sample_rate),
                         offset=float(offset), beat_edit=edit)

    def prepare_reference(self, image: Any, **kw: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """:func:`prepare_reference` at this model's size and on its device."""
        kw.setdefault("device", self.device)
        return prepare_reference(image, self.image_size, **kw)

    def encode_reference(self, frame: Any, *, fit: str = "crop") -> ReferenceLatent:
        """z0 of a start frame: a frame :meth:`prepare_reference` made is used as it is; any other image
        is squared (``fit``) and resized to the model's size first."""
        import torch

        arr = frame if isinstance(frame, np.ndarray) else None
        s = self.image_size
        if arr is None or arr.dtype != np.uint8 or arr.shape != (s, s, 3):
            arr, _ = prepare_reference(frame, s, fit=fit, segment=False)
        x = torch.from_numpy(np.array(arr, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
        z0 = self.flow_ae.encode(x)
        return ReferenceLatent(z0=z0, image=arr, model_name=self.name, flow_ae_file=self.flow_ae_key)

    def latent_reference(self, z0: Any) -> ReferenceLatent:
        """A reference whose latent ``[1, C, h, w]`` is already known (a toy world, a cached latent)."""
        return ReferenceLatent(z0=z0, image=None, model_name=self.name, flow_ae_file=self.flow_ae_key)

    def _check_same_model(self, ref: ReferenceLatent) -> None:
        if ref.flow_ae_file != self.flow_ae_key:
            where = f" ({self.files.root})" if self.files is not None else ""
            raise DabFusionError(f"the reference latent was encoded by the model '{ref.model_name}' "
                                 f"({Path(ref.flow_ae_file).parent}), not by '{self.name}'{where}; "
                                 "encode it with the same model you sample with")

    def sample_flows(self, ref: ReferenceLatent, music: MusicClip, *, n_frames: int, fps: float | None = None,
                     settings: SamplingSettings | None = None, progress: Progress | None = None,
                     **setting_kw: Any) -> FlowLatent:
        """Latent flows for ``n_frames`` frames of the music (any length, in windows).

        Settings come as a :class:`SamplingSettings` or as keywords (sampler, steps, guidance, seed,
        overlap) resolved by :meth:`settings`.
        """
        return self.sample_flows_batch([ref], [music], n_frames=n_frames, fps=fps, settings=settings,
                                       progress=progress, **setting_kw)[0]

    def sample_flows_batch(self, refs: Sequence[ReferenceLatent], musics: Sequence[Any], *, n_frames: int,
                           fps: float | None = None, settings: SamplingSettings | None = None,
                           progress: Progress | None = None, **setting_kw: Any) -> list[FlowLatent]:
        """:meth:`sample_flows` for several clips in one batch (one generator from the seed).

        ``musics``: :class:`MusicClip` s, or conditioning already in the model's space (a
        :class:`dabfusion.diffusion.StaticMusic`: benchmarks, precomputed embeddings; frame-time models).
        """
        import torch

        from .diffusion import generate_flows
        from .music import check_compatible

        if settings is None:
            settings = self.settings(**setting_kw)
        elif setting_kw:
            raise TypeError("give either settings or setting keywords, not both")
        if len(refs) != len(musics) or not refs:
            raise DabFusionError(f"{len(refs)} references for {len(musics)} pieces of music")
        for ref in refs:
            self._check_same_model(ref)
        clips = [m for m in musics if isinstance(m, MusicClip)]
        for m in clips:
            check_compatible(self.music.spec, m.spec, what=f"The model '{self.name}'")
        fps = float(fps or self.fps)
        n_frames = int(n_frames)
        if n_frames < 1:
            raise DabFusionError(f"the number of frames must be at least 1, got {n_frames}")
        for m in clips:
            if n_frames / fps > m.duration - m.offset + 0.5 / fps:
                log.warning("%d frames at %g fps (%.2f s) run past the end of the music (%.2f s): the rest dances "
                            "to silence", n_frames, fps, n_frames / fps, m.duration - m.offset)
        generator = torch.Generator().manual_seed(int(settings.seed) % (2 ** 63))
        z0 = torch.cat([r.z0 for r in refs]).to(self.device)
        sources = [m.windows(fps) if isinstance(m, MusicClip) else m for m in musics]
        out = generate_flows(self.diffusion, z0=z0, n_frames=n_frames, music=sources,
                             overlap=settings.overlap, sampler=settings.sampler,
                             num_inference_steps=settings.n_steps, guidance_scale=float(settings.guidance),
                             generator=generator, callback=progress)
        return [FlowLatent(flow=out.flow[i].float().cpu(), occlusion=out.occlusion[i].float().cpu(), fps=fps,
                           seed=int(settings.seed), window=out.window, overlap=out.overlap, starts=list(out.starts),
                           borders=list(out.borders[i])) for i in range(len(refs))]

    def sample_best_of(self, ref: ReferenceLatent, music: MusicClip, *, n_frames: int, candidates: int,
                       fps: float | None = None, settings: SamplingSettings | None = None,
                       progress: Progress | None = None, **setting_kw: Any) -> tuple[FlowLatent, list[Candidate]]:
        """The best of ``candidates`` dances: seeds ``seed, seed + 1, ...`` sampled one by one (each
        reproducible alone), rendered and scored by 2D-MM Align against the music's beats (the clip's
        grid, :attr:`MusicClip.beat_analysis`: a creator's beat grid edit included); returns the best
        clip's flows and every candidate, best first."""
        from dataclasses import replace

        from .metrics.mm_align import mm_align

        candidates = int(candidates)
        if candidates < 1:
            raise DabFusionError(f"candidates must be at least 1, got {candidates}")
        if settings is None:
            settings = self.settings(**setting_kw)
        elif setting_kw:
            raise TypeError("give either settings or setting keywords, not both")
        fps = float(fps or self.fps)
        beats = np.asarray(music.beat_analysis.beats, dtype=np.float64)
        sampling = self.sampling_units(n_frames, settings)
        per = sampling + math.ceil(int(n_frames) / RENDER_CHUNK)
        total = per * candidates
        scored: list[Candidate] = []
        best: Candidate | None = None
        for i in range(candidates):
            seed = (settings.seed + i) % (2 ** 64)
            flows = self.sample_flows(ref, music, n_frames=n_frames, fps=fps, settings=replace(settings, seed=seed),
                                      progress=_shifted(progress, i * per, total))
            frames = self.render(ref, flows, progress=_shifted(progress, i * per + sampling, total))
            score = float(mm_align(frames, fps, beat_times=beats, start=music.offset).score)
            scored.append(Candidate(seed=seed, mm_align=score, flows=flows))
            if best is None or _rank(scored[-1]) < _rank(best):
                if best is not None:
                    best.flows = None  # only the best clip's flows are kept (N clips could be many GB)
                best = scored[-1]
            else:
                scored[-1].flows = None
        scored.sort(key=_rank)
        return best.flows, scored

    def _check_flows(self, ref: ReferenceLatent, flows: FlowLatent) -> None:
        self._check_same_model(ref)
        if flows.n_frames < 1:
            raise DabFusionError("there are no frames to decode (zero frames)")
        latent = (self.config.latent_size,) * 2
        if tuple(flows.flow.shape[-2:]) != latent:
            raise DabFusionError(f"the flows are {tuple(flows.flow.shape[-2:])} but the model's latent is {latent}; "
                                 "sample them with the same model")

    def render(self, ref: ReferenceLatent, flows: FlowLatent, *, chunk: int = RENDER_CHUNK,
               progress: Progress | None = None) -> np.ndarray:
        """``decode(warp(z0, flow_i, occlusion_i))`` for every frame: uint8 ``[N, S, S, 3]``."""
        from .flow_ae import render_video

        self._check_flows(ref, flows)
        return render_video(self.flow_ae, ref.z0, flows.flow, flows.occlusion, chunk=int(chunk), progress=progress)

    def render_stream(self, ref: ReferenceLatent, flows: FlowLatent, *, chunk: int = RENDER_CHUNK,
                      progress: Progress | None = None) -> Any:
        """The frames of :meth:`render` as a :class:`dabfusion.flow_ae.FrameStream`: drawn chunk by chunk
        in the background while the consumer (the MP4 encoder) works, in bounded memory at any length."""
        from .flow_ae import FrameStream

        self._check_flows(ref, flows)
        return FrameStream(self.flow_ae, ref.z0, flows.flow, flows.occlusion, chunk=int(chunk), progress=progress)

    def __call__(self, image: Any, wave: Any, sample_rate: int, *, seconds: float | None = None,
                 frames: int | None = None, fps: float | None = None, sampler: str | None = None,
                 steps: int | None = None, guidance: float | None = None, seed: int = 0,
                 overlap: int | None = None, mask: Any = None, background: Any = None, fit: str = "crop",
                 yolo_model: Any = None, sam_model: Any = None, progress: Progress | None = None,
                 stream: bool = False, beat_edit: Any = None) -> Generation:
        """Make the person in ``image`` dance to ``wave`` (``[C, S]`` at ``sample_rate``, from its start).

        ``stream``: the frames come as a :class:`dabfusion.flow_ae.FrameStream` drawn while they are
        consumed (give it to :func:`write_generation`), not as one array. ``beat_edit``: a
        :class:`dabfusion.music.beat_grid.BeatGridEdit` of the tracker's beat grid (times in ``wave``'s seconds).
        """
        fps = float(fps or self.fps)
        settings = self.settings(sampler=sampler, steps=steps, guidance=guidance, seed=seed, overlap=overlap)
        music = self.encode_music(wave, sample_rate, beat_edit=beat_edit)
        n = resolve_length(fps=fps, seconds=seconds, frames=frames, music_seconds=music.duration)
        n, cut = clamp_to_music(n, fps=fps, music_seconds=music.duration - music.offset)
        if cut:
            log.warning(cut)
        start_frame, _ = self.prepare_reference(image, mask=mask, background=background, fit=fit,
                                                yolo_model=yolo_model, sam_model=sam_model)
        ref = self.encode_reference(start_frame)
        sampling = self.sampling_units(n, settings)
        total = sampling + math.ceil(n / RENDER_CHUNK)
        flows = self.sample_flows(ref, music, n_frames=n, fps=fps, settings=settings,
                                  progress=_shifted(progress, 0, total))
        draw = self.render_stream if stream else self.render
        video = draw(ref, flows, progress=_shifted(progress, sampling, total))
        return Generation(frames=video, fps=fps, audio=music.wave, sample_rate=music.sample_rate,
                          reference=ref.image, flows=flows)


# ------------------------------------------------------------------------------------ cache


class _Cache:
    """The last pipelines loaded from model folders, reused while their files are unchanged."""

    SIZE = 2

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[tuple, DabFusionPipeline] = {}

    def key(self, files: Any, **kw: Any) -> tuple:
        from .model_bundle import files_stamp

        dirs = tuple(sorted((k, tuple(map(str, v))) for k, v in (kw.pop("search_dirs") or {}).items()))
        return (files_stamp(files.root), str(kw.get("device")), str(kw.get("dtype")), dirs)

    def get(self, files: Any, *, load: Callable[[], DabFusionPipeline], **kw: Any) -> DabFusionPipeline:
        key = self.key(files, **kw)
        with self.lock:
            hit = self.items.pop(key, None)
            if hit is not None:
                self.items[key] = hit  # the most recently used goes last: the least recent is dropped first
        if hit is not None:
            return hit
        pipe = load()
        with self.lock:
            self.items[key] = pipe
            while len(self.items) > self.SIZE:
                self.items.pop(next(iter(self.items)))
        return pipe

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


_PIPELINE_CACHE = _Cache()
clear_pipeline_cache = _PIPELINE_CACHE.clear


# ------------------------------------------------------------------------------------ files in, MP4 out


def write_generation(path: str | os.PathLike, gen: Generation, *, metadata: Mapping[str, str] | None = None,
                     crf: int = 18) -> Path:
    """The frames as an h264 MP4 with the music (AAC), trimmed or padded to the video's length."""
    from .media.video import write_mp4

    return write_mp4(path, gen.frames, gen.fps, audio=gen.audio, sample_rate=gen.sample_rate, crf=crf,
                     metadata=metadata)


def check_output_path(out: str | os.PathLike) -> Path:
    """A video path in a folder that exists (made if needed) and can be written: checked before any work,
    so a bad --out costs no generation and ends in one line, not a traceback."""
    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".m4v", ".mov", ".mkv"):
        raise MediaError(f"the output must be a video file (.mp4), got {out}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MediaError(f"cannot create the output folder {out.parent} ({e.strerror or e}): choose an --out "
                         "in a folder you can write") from None
    if not os.access(out.parent, os.W_OK):
        raise MediaError(f"the output folder {out.parent} is not writable: choose an --out in a folder you can write")
    return out


def generate_video(image: str | os.PathLike, music: str | os.PathLike, out: str | os.PathLike, *,
                   pipeline: DabFusionPipeline | None = None, checkpoint: str | os.PathLike | None = None,
                   device: Any = None, start: float = 0.0, seconds: float | None = None, frames: int | None = None,
                   fps: float | None = None, mask: str | os.PathLike | None = None,
                   search_dirs: Mapping[str, Sequence[str | os.PathLike]] | None = None,
                   **generate_kw: Any) -> Path:
    """Files in, MP4 out: the whole product in one call (what ``python -m dabfusion generate`` runs).

    ``generate_kw``: the pipeline call's sampling, reference and progress keywords. Its ``beat_edit`` (a
    :class:`dabfusion.music.beat_grid.BeatGridEdit`) has its beat list in the music file's seconds: it is
    cut to the part used (``start`` ...).
    """
    import inspect
    import json

    from .media.image import load_image, load_image_with_alpha

    passed_on = set(inspect.signature(DabFusionPipeline.__call__).parameters) - {
        "self", "image", "wave", "sample_rate", "seconds", "frames", "fps", "mask", "stream"}
    unknown = sorted(set(generate_kw) - passed_on)
    if unknown:  # before any loading: a typo must not cost a model load and a music analysis
        hint = " (a loaded model is pipeline=)" if "bundle" in unknown else ""
        raise TypeError(f"generate_video() got unexpected keyword(s) {unknown}{hint}")
    out = check_output_path(out)
    rgb, alpha = load_image_with_alpha(image)
    picture = rgb if alpha is None else np.concatenate([rgb, (alpha * 255 + 0.5).astype(np.uint8)[..., None]], -1)
    person = None
    if mask is not None:
        person = load_image(mask)[..., 0].astype(np.float32) / 255.0  # white = person
    if pipeline is None:
        pipeline = DabFusionPipeline.from_folder(checkpoint, device=resolve_device(device), search_dirs=search_dirs)
    fps_ = float(fps or pipeline.fps)
    # Read only what is needed of a long track: the requested span and one more second, so the beat
    # tracker sees the beat that closes the clip (the MP4's audio is cut to the video's length).
    want = frames / fps_ if frames is not None else seconds
    wave, sr = load_music(music, start=start, seconds=None if want is None else float(want) + 1.0)
    if generate_kw.get("beat_edit") is not None:
        generate_kw["beat_edit"] = generate_kw["beat_edit"].cut(start, wave.shape[-1] / sr)
    gen = pipeline(picture, wave, sr, seconds=seconds, frames=frames, fps=fps_, mask=person, stream=True,
                   **generate_kw)
    seed = generate_kw.get("seed", 0)
    info = {"model": pipeline.name, "seed": seed, "fps": gen.fps, "frames": len(gen.frames), "start": start,
            "image": os.fspath(image), "music": os.fspath(music)}
    if generate_kw.get("beat_edit") is not None:
        info["beat_grid"] = generate_kw["beat_edit"].describe()
    meta = {"comment": f"Dance Any Beat (DabFusion): model {pipeline.name}, seed {seed}",
            "dabfusion": json.dumps(info, sort_keys=True)}
    return write_generation(out, gen, metadata=meta)


__all__ = ["Candidate", "DabFusionPipeline", "FlowLatent", "Generation", "MusicClip", "ReferenceLatent", "SAMPLING_DEFAULTS",
           "SamplingSettings", "as_wave", "check_output_path", "check_sampler", "clamp_to_music", "clear_pipeline_cache",
           "describe_candidates", "generate_video", "load_music", "prepare_reference", "resolve_device", "resolve_length",
           "sampler_names", "write_generation"]
