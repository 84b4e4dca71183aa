"""Music in: float32 ``[channels, samples]`` at a requested rate, from files or video tracks.

soundfile (libsndfile) reads wav/flac/ogg/aiff and seeks straight to the offset, so taking 4 s
from a 10-minute track reads 4 s. Everything else (mp3, m4a/aac, opus, the audio track of
mp4/mkv/webm/mov) goes through PyAV, which seeks near the offset and trims to the exact sample
using frame timestamps. Resampling uses soxr (very high quality, fast), the resampler librosa
itself uses by default.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MediaError
from .image import to_numpy

SOUNDFILE_SUFFIXES = {".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".w64", ".rf64", ".caf"}


# --------------------------------------------------------------------------- array helpers


def _as_2d(wave: Any) -> np.ndarray:
    """[S] -> [1, S]; [C, S] unchanged; always float32."""
    arr = to_numpy(wave).astype(np.float32, copy=False)
    if arr.ndim == 1:
        return arr[None]
    if arr.ndim != 2:
        raise MediaError(f"audio must be [channels, samples] or [samples], got shape {arr.shape}")
    return arr


def to_mono(wave: Any) -> np.ndarray:
    """Average the channels into ``[1, S]`` (an average, not a sum, so levels do not clip)."""
    arr = _as_2d(wave)
    return arr if arr.shape[0] == 1 else arr.mean(axis=0, keepdims=True, dtype=np.float32)


def resample(wave: Any, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample along the last axis with soxr (band-limited, no aliasing); keeps [S] or [C, S]."""
    import soxr

    sr_in, sr_out = int(sr_in), int(sr_out)
    if sr_in <= 0 or sr_out <= 0:
        raise MediaError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    arr = to_numpy(wave).astype(np.float32, copy=False)
    if sr_in == sr_out:
        return arr
    if arr.ndim == 1:
        return soxr.resample(arr, sr_in, sr_out, quality="VHQ").astype(np.float32, copy=False)
    if arr.ndim != 2:
        raise MediaError(f"audio must be [channels, samples] or [samples], got shape {arr.shape}")
    if arr.shape[1] == 0:
        return np.zeros((arr.shape[0], 0), np.float32)
    out = soxr.resample(np.ascontiguousarray(arr.T), sr_in, sr_out, quality="VHQ")  # soxr wants [S, C]
    return np.ascontiguousarray(out.reshape(-1, arr.shape[0]).T, dtype=np.float32)


def fit_audio_length(wave: Any, n_samples: int) -> np.ndarray:
    """Trim or zero-pad the last axis to exactly ``n_samples`` (video length in samples)."""
    arr = to_numpy(wave)
    n_samples = int(n_samples)
    if n_samples < 0:
        raise MediaError(f"n_samples must be >= 0, got {n_samples}")
    have = arr.shape[-1]
    if have >= n_samples:
        return arr[..., :n_samples]
    pad = [(0, 0)] * (arr.ndim - 1) + [(0, n_samples - have)]
    return np.pad(arr, pad)


# ------------------------------------------------------------------------------ file reading


def _check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise MediaError(f"audio file not found: {path}")
    if not path.is_file():
        raise MediaError(f"not an audio file (it is a folder): {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"audio file is empty (0 bytes): {path}")
    return path


def _length_error(path: Path, offset: float, total_s: float) -> MediaError:
    if total_s <= 0:
        return MediaError(f"audio file contains no samples (zero-length audio): {path}")
    return MediaError(f"offset {offset:.3f} s is beyond the end of {path} ({total_s:.3f} s long)")


def _read_soundfile(path: Path, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    """Seek and read only the requested span; raises RuntimeError if libsndfile can't open it."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        sr, total = f.samplerate, f.frames
        start = int(round(offset * sr))
        if total <= 0 or start >= total:
            raise _length_error(path, offset, total / sr)
        n = -1 if duration is None else int(round(duration * sr))
        if f.seekable():
            f.seek(start)
        else:  # rare: read and drop
            f.read(start, dtype="float32")
        data = f.read(n, dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), sr


_INT_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0, np.dtype(np.int64): 2.0**63}


def _frame_to_float(frame) -> np.ndarray:
    """A decoded frame as float32 [C, n], whatever the codec's sample format (planar or packed)."""
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) / 128.0
    if arr.dtype in _INT_SCALE:
        return (arr / _INT_SCALE[arr.dtype]).astype(np.float32)
    return arr.astype(np.float32, copy=False)


def _frame_position(frame, t0: float, sr: int) -> int:
    """Sample index of a decoded frame's first sample, relative to the stream start."""
    if frame.pts is None or not frame.time_base:
        return 0
    return int(round((float(frame.pts * frame.time_base) - t0) * sr))


def _read_pyav(path: Path, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    """Decode with PyAV from a seek point near ``offset``; cut at exact samples using timestamps."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or err
        raise MediaError(f"could not read audio from {path}: not a readable audio or video file ({reason})") from err
    with container:
        if not container.streams.audio:
            raise MediaError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        sr = int(stream.codec_context.sample_rate or stream.rate or 0)
        if sr <= 0:
            raise MediaError(f"could not read audio from {path}: unknown sample rate")
        t0 = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        start = int(round(offset * sr))
        stop = math.inf if duration is None else start + int(round(duration * sr))
        if offset > 0:
            try:
                container.seek(int((offset + t0) / stream.time_base), stream=stream, backward=True)
            except av.FFmpegError:
                pass  # not seekable: decode from the beginning
        chunks, end, anchored = [], 0, False
        try:
            for frame in container.decode(stream):
                # Place the first frame after the seek by its timestamp, then count samples: per-frame
                # timestamps can be coarse (mkv: 1 ms) and would leave gaps or overlaps.
                pos = end if anchored else _frame_position(frame, t0, sr)
                anchored = True
                arr = _frame_to_float(frame)
                end = pos + arr.shape[1]
                lo, hi = max(start, pos), min(stop, end)
                if hi > lo:
                    chunks.append(arr[:, lo - pos : hi - pos])
                if end >= stop:
                    break
        except av.FFmpegError as err:
            reason = getattr(err, "strerror", None) or err
            raise MediaError(f"could not decode audio in {path}: {reason}") from err
        known_s = max(end / sr, (container.duration or 0) / 1_000_000)
    if not chunks:
        raise _length_error(path, offset, known_s)
    return np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32), sr


def audio_duration(path: str | os.PathLike) -> float:
    """Length (s) of an audio file's (first) audio stream, from its header where it has one (else decoded)."""
    path = _check_file(path)
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            import soundfile as sf

            info = sf.info(str(path))
            if info.frames > 0 and info.samplerate > 0:
                return info.frames / float(info.samplerate)
        except RuntimeError:
            pass
    wave, sr = _read_pyav(path, 0.0, None)
    return wave.shape[-1] / float(sr)


def load_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int | None = None,
    offset: float = 0.0,
    duration: float | None = None,
    mono: bool = True,
) -> tuple[np.ndarray, int]:
    """Load ``duration`` seconds from ``offset`` as float32 [C, S] at ``sample_rate`` (or native).

    Silence is valid input and comes back as zeros. Missing, empty, corrupt or audio-less files,
    zero-length audio and an offset past the end raise :class:`MediaError` naming the file.
    """
    path = _check_file(path)
    if not (offset >= 0 and math.isfinite(offset)):
        raise MediaError(f"offset must be >= 0 seconds, got {offset} (for {path})")
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise MediaError(f"duration must be > 0 seconds, got {duration} (for {path})")
    wave = sr = None
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            wave, sr = _read_soundfile(path, offset, duration)
        except RuntimeError:  # libsndfile can't read this variant (or it is corrupt): try ffmpeg
            wave = None
    if wave is None:
        wave, sr = _read_pyav(path, offset, duration)
    if not np.isfinite(wave).all():
        raise MediaError(f"audio in {path} contains NaN or infinite samples")
    if mono:
        wave = to_mono(wave)
    if sample_rate is not None and int(sample_rate) != sr:
        wave, sr = resample(wave, sr, int(sample_rate)), int(sample_rate)
    return wave, sr
