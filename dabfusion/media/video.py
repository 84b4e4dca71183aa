"""MP4 writing and frame reading with PyAV (no ffmpeg binary needed, like ComfyUI core).

Writing: h264 (libx264) in yuv420p with an optional AAC track, muxed in one pass, into a temporary
file in the target folder that is renamed into place only when complete. yuv420p needs even sizes,
so odd frames are *padded* by one replicated edge row/column (nothing is cut off); reading such a
file back gives the padded, even size.

Reading: frames are picked by presentation time at a target fps (nearest source frame), then
scaled with swscale inside PyAV and centre-cropped or letterboxed to a square.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from ..errors import MediaError
from .image import check_fit, crop_or_pad_square, square_scaled_size, to_numpy

# Sample rates the AAC encoder accepts; anything else is resampled to 48 kHz before muxing.
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


@dataclass(frozen=True)
class VideoInfo:
    """What a caller needs to plan a read: geometry, timing and whether there is sound."""

    width: int
    height: int
    fps: float
    n_frames: int
    duration: float
    has_audio: bool
    audio_sample_rate: int | None


# ------------------------------------------------------------------------------ small helpers


def _as_fraction(fps: float | Fraction, what: str = "fps") -> Fraction:
    """fps as an exact rational: 30000/1001 stays NTSC instead of a long float."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise MediaError(f"{what} must be a number, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise MediaError(f"{what} must be a positive number, got {fps!r}")
    if isinstance(fps, Fraction):
        return fps
    return Fraction(value).limit_denominator(10000)


def _open_error(path: Path, err: Exception) -> MediaError:
    return MediaError(f"could not read video file {path}: {err}")


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"video file is empty (0 bytes): {path}")
    return path


def _open_input(path: Path):
    import av

    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as err:
        raise _open_error(path, err) from err


def _video_stream(container, path: Path):
    if not container.streams.video:
        raise MediaError(f"{path} has no video stream")
    return container.streams.video[0]


# ------------------------------------------------------------------------------------- frames


def _to_uint8_frame(frame: Any, index: int) -> np.ndarray:
    """One frame as uint8 [H, W, 3]: floats are 0..1, grayscale [H, W, 1] is expanded."""
    arr = to_numpy(frame)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise MediaError(f"frame {index} must be [H, W, 3] RGB, got shape {tuple(arr.shape)}")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise MediaError(f"frame {index} contains NaN or infinite values")
        return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        return np.clip(arr, 0, 255).astype(np.uint8)
    raise MediaError(f"frame {index} has unsupported dtype {arr.dtype}")


def _iter_frames(frames: Any) -> Iterator[Any]:
    """Frames one at a time, so a generator never has to be materialised."""
    if hasattr(frames, "shape") and hasattr(frames, "ndim"):
        if frames.ndim != 4:
            raise MediaError(f"frames must be [N, H, W, 3], got shape {tuple(frames.shape)}")
        for i in range(frames.shape[0]):
            yield frames[i]
        return
    try:
        it = iter(frames)
    except TypeError:
        kind = type(frames).__name__
        raise MediaError(f"frames must be an array [N, H, W, 3] or an iterable of frames, got {kind}") from None
    yield from it


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: replicate the last row/column rather than lose one."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


# -------------------------------------------------------------------------------------- audio


def _prepare_audio(audio: Any, sample_rate: Any) -> tuple[np.ndarray, int]:
    """Audio as float32 [C, S] with C in (1, 2) at a rate AAC accepts."""
    if sample_rate is None:
        raise MediaError("audio was given without sample_rate; pass sample_rate= (in Hz)")
    try:
        sr = int(sample_rate)
    except (TypeError, ValueError):
        raise MediaError(f"sample_rate must be an integer number of Hz, got {sample_rate!r}") from None
    if sr <= 0 or sr != float(sample_rate):
        raise MediaError(f"sample_rate must be a positive integer number of Hz, got {sample_rate!r}")
    wave = to_numpy(audio).astype(np.float32, copy=False)
    if wave.ndim == 3 and wave.shape[0] == 1:  # a ComfyUI [1, C, S] batch
        wave = wave[0]
    if wave.ndim == 1:
        wave = wave[None]
    if wave.ndim != 2:
        raise MediaError(f"audio must be [channels, samples] or [samples], got shape {tuple(wave.shape)}")
    if wave.shape[0] > 2:
        if wave.shape[1] <= 2:
            raise MediaError(f"audio looks like [samples, channels] {tuple(wave.shape)}; pass [channels, samples]")
        raise MediaError(f"audio with {wave.shape[0]} channels is not supported for MP4; mix it to mono or stereo")
    if not np.isfinite(wave).all():
        raise MediaError("audio contains NaN or infinite values")
    if sr not in AAC_RATES:
        from .audio import resample

        wave, sr = resample(wave, sr, 48000), 48000
    return np.ascontiguousarray(wave, dtype=np.float32), sr


class _AudioFeeder:
    """Feeds audio up to a given time, zero-padding past its end, so muxing stays interleaved."""

    def __init__(self, stream, wave: np.ndarray, sample_rate: int):
        self.stream, self.wave, self.sr = stream, wave, sample_rate
        self.layout = "mono" if wave.shape[0] == 1 else "stereo"
        self.written = 0

    def feed_until(self, n_samples: int) -> list:
        import av

        packets = []
        if n_samples <= self.written:
            return packets
        chunk = self.wave[:, self.written : n_samples]
        missing = n_samples - self.written - chunk.shape[1]
        if missing > 0:
            chunk = np.concatenate([chunk, np.zeros((chunk.shape[0], missing), np.float32)], axis=1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=self.layout)
        frame.sample_rate = self.sr
        frame.pts = self.written
        frame.time_base = Fraction(1, self.sr)
        self.written = n_samples
        packets.extend(self.stream.encode(frame))
        return packets

    def flush(self) -> list:
        return list(self.stream.encode(None))


# -------------------------------------------------------------------------------------- write


def _check_output(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise MediaError(f"output folder does not exist: {folder} (for {path})")
    if path.is_dir():
        raise MediaError(f"output path is a folder, not a file: {path}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MediaError(f"output folder is not writable: {folder} (for {path})")


def _video_codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "h264"


def _add_video_stream(container, rate: Fraction, width: int, height: int, crf: int, preset: str):
    codec = _video_codec()
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    if codec == "libx264":
        stream.options = {"crf": str(crf), "preset": preset}
    else:  # an encoder without crf: ask for plenty of bits instead
        stream.bit_rate = max(2_000_000, width * height * 8)
    return stream


def _add_audio_stream(container, wave: np.ndarray, sr: int):
    stream = container.add_stream("aac", rate=sr)
    stream.layout = "mono" if wave.shape[0] == 1 else "stereo"
    stream.bit_rate = 128_000 * wave.shape[0]
    return stream


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix or '.mp4'}")


def write_mp4(
    path: str | os.PathLike,
    frames: Any,
    fps: float | Fraction,
    audio: Any = None,
    sample_rate: int | None = None,
    *,
    crf: int = 18,
    metadata: Mapping[str, str] | None = None,
    preset: str = "medium",
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Write frames (and optional audio) to an MP4 atomically; returns the final path.

    ``frames``: uint8 [N,H,W,3], float [N,H,W,3] in 0..1 (numpy or torch), or an iterable of
    [H,W,3] frames, streamed. Audio float [C,S] or [S] is trimmed/zero-padded to N/fps seconds.
    ``metadata`` becomes container tags (ComfyUI stores the workflow JSON there).
    ``progress(done, total)`` is called after each frame is encoded (``total`` is None for an
    iterable without a length). Whatever stops the write - a bad frame, a full disk, an exception
    raised in ``progress`` (a user's cancel) - removes the temporary file: the target path is
    either the complete video or untouched.
    """
    path = Path(path)
    rate = _as_fraction(fps)
    _check_output(path)
    wave, sr = _prepare_audio(audio, sample_rate) if audio is not None else (None, None)
    tags = {str(k): str(v) for k, v in (metadata or {}).items()}

    it = _iter_frames(frames)
    try:
        first = _to_uint8_frame(next(it), 0)
    except StopIteration:
        raise MediaError(f"no frames to write to {path}") from None
    except MediaError as err:
        raise _naming(err, path) from err
    total = _length(frames)
    tmp = _temp_name(path)
    try:
        _encode(tmp, path, first, it, rate, wave, sr, crf, preset, tags, progress, total)
        os.replace(tmp, path)
    except MediaError as err:
        tmp.unlink(missing_ok=True)
        raise _naming(err, path) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _naming(err: MediaError, path: Path) -> MediaError:
    """Make sure a frame-level error says which output it was for."""
    return err if str(path) in str(err) else MediaError(f"{err} (writing {path})")


def _length(frames: Any) -> int | None:
    """How many frames an array or sized sequence holds; None for a generator."""
    if hasattr(frames, "shape") and hasattr(frames, "ndim"):
        return int(frames.shape[0])
    try:
        return len(frames)
    except TypeError:
        return None


def _encode(tmp, path, first, rest, rate, wave, sr, crf, preset, tags, progress=None, total=None) -> None:
    import av

    fmt = _FORMATS.get(path.suffix.lower(), "mp4")
    options = {"movflags": "+use_metadata_tags+faststart"} if fmt in ("mp4", "mov") else {}
    try:
        container = av.open(str(tmp), mode="w", format=fmt, options=options)
    except (av.FFmpegError, OSError) as err:
        raise MediaError(f"could not create {path}: {err}") from err
    try:
        container.metadata.update(tags)
        h, w = first.shape[:2]
        vstream = _add_video_stream(container, rate, w + w % 2, h + h % 2, crf, preset)
        feeder = _AudioFeeder(_add_audio_stream(container, wave, sr), wave, sr) if wave is not None else None
        n = 0
        for frame in _chain(first, rest):
            arr = frame if n == 0 else _to_uint8_frame(frame, n)
            if arr.shape != first.shape:
                raise MediaError(
                    f"frame {n} has shape {arr.shape} but frame 0 has {first.shape}; all frames must match"
                )
            vf = av.VideoFrame.from_ndarray(_pad_even(arr), format="rgb24")
            vf.pts = n
            vf.time_base = 1 / rate
            container.mux(vstream.encode(vf))
            n += 1
            if feeder is not None:  # audio up to the end of this frame, so streams interleave
                container.mux(feeder.feed_until(int(round(n * sr / rate))))
            if progress is not None:
                progress(n, total)
        container.mux(vstream.encode(None))
        if feeder is not None:
            container.mux(feeder.flush())
    except MediaError:
        container.close()
        raise
    except (av.FFmpegError, OSError) as err:
        container.close()
        raise MediaError(f"could not write {path}: {err}") from err
    except BaseException:
        container.close()
        raise
    try:
        container.close()
    except (av.FFmpegError, OSError) as err:
        raise MediaError(f"could not finish writing {path}: {err}") from err


def _chain(first: np.ndarray, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


# --------------------------------------------------------------------------------------- read


def _stream_fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Size, fps, frame count and audio presence without decoding pictures."""
    path = _existing_file(path)
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream)
        n_frames = int(stream.frames or 0)
        if n_frames <= 0:  # mkv/webm do not store a count: count packets (no decoding)
            n_frames = sum(1 for p in container.demux(stream) if p.size > 0)
        duration = _stream_duration(stream) or n_frames / fps or (container.duration or 0) / 1_000_000
        audio = container.streams.audio[0] if container.streams.audio else None
        return VideoInfo(
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            fps=fps,
            n_frames=n_frames,
            duration=float(duration),
            has_audio=audio is not None,
            audio_sample_rate=int(audio.codec_context.sample_rate) if audio is not None else None,
        )


def _stream_duration(stream) -> float:
    """The video stream's own duration (0 when the container does not store it, e.g. mkv)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return 0.0


def _timed_frames(container, stream, start: float) -> Iterator[tuple[float, Any]]:
    """Decoded frames with times relative to the stream's first frame (seeking near ``start``)."""
    tb = stream.time_base
    t0 = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
    if start > 0 and tb:
        container.seek(int((start + t0) / tb), stream=stream, backward=True, any_frame=False)
    step = 1.0 / _stream_fps(stream)
    for i, frame in enumerate(container.decode(stream)):
        t = frame.time
        yield (t - t0 if t is not None else i * step), frame


def _select_nearest(timed, fps: float, start: float, n_max: float, src_step: float):
    """For target times start + k/fps, yield the source frame nearest in time (ties: earlier)."""
    k = 0
    prev_t, prev = None, None
    for t, frame in timed:
        if prev is not None:
            boundary = 0.5 * (prev_t + t)
            while k < n_max and start + k / fps <= boundary + 1e-9:
                yield prev
                k += 1
        if k >= n_max:
            return
        prev_t, prev = t, frame
    if prev is None:
        return
    end = prev_t + src_step
    while k < n_max and start + k / fps < end - 1e-9:
        yield prev
        k += 1


def _select_range(timed, start: float, stop: float, n_max: float, src_step: float):
    """Every source frame shown within [start, stop) (native frame rate)."""
    k = 0
    for t, frame in timed:
        if k >= n_max or t >= stop - 1e-9:
            return
        if t + src_step > start + 1e-9:
            yield frame
            k += 1


def _convert(frame, size: int | None, fit: str) -> np.ndarray:
    """RGB uint8, scaled by swscale (area filter when shrinking) then cropped/padded to a square."""
    if size is None:
        return frame.to_ndarray(format="rgb24")
    nw, nh = square_scaled_size(frame.width, frame.height, size, fit)
    interp = "AREA" if nw < frame.width or nh < frame.height else "BILINEAR"
    arr = frame.to_ndarray(format="rgb24", width=nw, height=nh, interpolation=interp)
    return crop_or_pad_square(arr, size, fit)


def read_video_frames(
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    size: int | None = None,
    fit: str = "crop",
    start: float = 0.0,
    duration: float | None = None,
    max_frames: int | None = None,
) -> tuple[np.ndarray, float]:
    """Frames as uint8 [N, S, S, 3] (native size if ``size`` is None) and their fps.

    With ``fps``, frame k is the source frame nearest to time ``start + k/fps`` (so 60 -> 20 fps
    takes every third frame, 24 -> 30 repeats some). Without it, source frames are returned as is.
    """
    check_fit(fit)
    if size is not None and int(size) < 1:
        raise MediaError(f"size must be a positive number of pixels, got {size}")
    if start < 0 or (duration is not None and duration <= 0):
        raise MediaError(f"start must be >= 0 and duration > 0, got start={start}, duration={duration}")
    path = _existing_file(path)
    n_max: float = math.inf if max_frames is None else int(max_frames)
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        src_fps = _stream_fps(stream)
        out_fps = float(_as_fraction(fps)) if fps is not None else src_fps
        if duration is not None:
            n_max = min(n_max, math.floor(duration * out_fps + 1e-6))
        timed = _timed_frames(container, stream, start)
        if fps is not None:
            chosen = _select_nearest(timed, out_fps, start, n_max, 1.0 / src_fps)
        else:
            stop = start + duration if duration is not None else math.inf
            chosen = _select_range(timed, start, stop, n_max, 1.0 / src_fps)
        out = _convert_all(chosen, None if size is None else int(size), fit, path)
    if not out:
        raise MediaError(f"no frames in {path} from start={start:.3f}s (is start beyond the end?)")
    return np.stack(out), out_fps


def _convert_all(chosen, size, fit, path) -> list[np.ndarray]:
    """Convert each chosen frame once, even when the same frame is repeated."""
    import av

    out: list[np.ndarray] = []
    last_frame, last_arr = None, None
    try:
        for frame in chosen:
            if frame is not last_frame:
                last_frame, last_arr = frame, _convert(frame, size, fit)
            out.append(last_arr)
    except av.FFmpegError as err:
        raise MediaError(f"could not decode {path}: {err}") from err
    return out
