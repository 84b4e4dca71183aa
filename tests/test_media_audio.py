"""load_audio across formats, exact offsets, resampling, channels and every kind of bad file."""

from __future__ import annotations

import os

import av
import numpy as np
import pytest
import soundfile as sf

from dabfusion.errors import MediaError
from dabfusion.media.audio import fit_audio_length, load_audio, resample, to_mono
from dabfusion.media.video import write_mp4

SR = 44100
CLICK_S = 1.5


def click_signal(sr: int = SR, seconds: float = 3.0) -> np.ndarray:
    """Stereo silence with one click at CLICK_S (negated on the right channel)."""
    x = np.zeros((2, int(sr * seconds)), np.float32)
    if seconds > CLICK_S:
        x[0, int(CLICK_S * sr)] = 0.9
        x[1, int(CLICK_S * sr)] = -0.9
    return x


def encode_pyav(path, wave: np.ndarray, sr: int, codec: str, fmt: str | None = None) -> None:
    """Write a compressed audio file with the encoder bundled in PyAV (skip if it is missing)."""
    if codec not in av.codecs_available:
        pytest.skip(f"PyAV build has no {codec} encoder")
    layout = "mono" if wave.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as c:
        stream = c.add_stream(codec, rate=sr)
        stream.layout = layout
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave), format="fltp", layout=layout)
        frame.sample_rate, frame.pts = sr, 0
        c.mux(stream.encode(frame))
        c.mux(stream.encode(None))


def write_file(tmp_path, kind: str, wave: np.ndarray, sr: int):
    path = tmp_path / f"music.{kind}"
    if kind in ("wav", "flac", "ogg"):
        sf.write(str(path), wave.T, sr)
    elif kind == "mp3":
        encode_pyav(path, wave, sr, "libmp3lame")
    elif kind == "m4a":
        encode_pyav(path, wave, sr, "aac", "mp4")
    elif kind in ("mp4", "mkv"):
        n = int(round(wave.shape[1] / sr * 10))
        write_mp4(path, np.zeros((n, 16, 16, 3), np.uint8), 10, audio=wave, sample_rate=sr)
    return path


@pytest.mark.parametrize("kind", ["wav", "flac", "ogg", "mp3", "m4a", "mp4", "mkv"])
def test_formats_and_exact_offset(tmp_path, kind):
    path = write_file(tmp_path, kind, click_signal(), SR)

    full, sr = load_audio(path, mono=False)
    assert sr == SR and full.dtype == np.float32 and full.shape[0] == 2
    assert abs(full.shape[1] - 3 * SR) <= 0.03 * SR  # lossy codecs may pad the last frame
    assert abs(np.argmax(np.abs(full[0])) / SR - CLICK_S) <= 0.001

    part, sr = load_audio(path, offset=1.0, duration=1.0, mono=False)
    assert part.shape == (2, SR)
    peak = np.argmax(np.abs(part[0]))
    assert abs(peak / SR - (CLICK_S - 1.0)) <= 0.001  # the click lands where it should, +-1 ms
    assert np.sign(part[0, peak]) == -np.sign(part[1, peak])  # channels kept apart

    mono, _ = load_audio(path, offset=1.0, duration=1.0)
    assert mono.shape == (1, SR)


def test_offset_without_duration_reads_to_end(tmp_path):
    path = write_file(tmp_path, "wav", click_signal(), SR)
    rest, _ = load_audio(path, offset=2.0)
    assert rest.shape == (1, SR)


@pytest.mark.parametrize("sr_in", [8000, 22050, 44100, 96000])
def test_resampling_keeps_frequency_and_level(tmp_path, sr_in):
    freq, target = 997.0, 22050
    t = np.arange(sr_in) / sr_in
    path = tmp_path / f"sine{sr_in}.wav"
    sf.write(str(path), (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr_in)
    wave, sr = load_audio(path, sample_rate=target)
    assert sr == target and abs(wave.shape[1] - target) <= 1
    x = wave[0, 1000:-1000]  # away from the filter's edges
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=8 * target))
    peak_hz = np.argmax(spectrum) * target / (8 * target)
    assert abs(peak_hz - freq) < 2.0
    assert np.sqrt(np.mean(x**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.03)


def test_resample_shapes_and_identity():
    x = np.random.default_rng(0).standard_normal((3, 4410)).astype(np.float32)
    y = resample(x, 44100, 16000)
    assert y.shape == (3, 1600) and y.dtype == np.float32
    assert resample(x[0], 44100, 16000).shape == (1600,)
    assert resample(x, 16000, 16000) is x


def test_multichannel_mono_and_keep(tmp_path):
    x = np.stack([np.full(1000, v, np.float32) for v in (0.1, 0.2, 0.6)])
    path = tmp_path / "three.wav"
    sf.write(str(path), x.T, 16000)
    kept, _ = load_audio(path, mono=False)
    assert kept.shape == (3, 1000) and np.allclose(kept[:, 0], [0.1, 0.2, 0.6], atol=1e-4)
    mono, _ = load_audio(path)
    assert mono.shape == (1, 1000) and np.allclose(mono, 0.3, atol=1e-4)
    assert to_mono(np.ones(5)).shape == (1, 5)


def test_silence_is_valid(tmp_path):
    path = tmp_path / "silent.wav"
    sf.write(str(path), np.zeros(8000, np.float32), 8000)
    wave, sr = load_audio(path, sample_rate=16000)
    assert wave.shape == (1, 16000) and sr == 16000 and not wave.any()


def test_fit_audio_length():
    x = np.ones((2, 10), np.float32)
    assert fit_audio_length(x, 4).shape == (2, 4)
    padded = fit_audio_length(x, 15)
    assert padded.shape == (2, 15) and padded[:, 10:].sum() == 0 and padded[:, :10].all()
    assert fit_audio_length(np.ones(3), 5).tolist() == [1, 1, 1, 0, 0]


def bad_files(tmp_path):
    (tmp_path / "empty.mp3").write_bytes(b"")
    sf.write(str(tmp_path / "zero.wav"), np.zeros((0, 1), np.float32), 16000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF" + os.urandom(3000))
    (tmp_path / "corrupt.mp3").write_bytes(os.urandom(3000))
    write_mp4(tmp_path / "silent_video.mp4", np.zeros((3, 16, 16, 3), np.uint8), 10)


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("missing.wav", {}, "not found"),
        ("empty.mp3", {}, "empty"),
        ("zero.wav", {}, "no samples"),
        ("corrupt.wav", {}, "could not read"),
        ("corrupt.mp3", {}, "could not read"),
        ("silent_video.mp4", {}, "no audio stream"),
    ],
)
def test_bad_files_raise_naming_the_file(tmp_path, name, kwargs, match):
    bad_files(tmp_path)
    with pytest.raises(MediaError, match=match) as err:
        load_audio(tmp_path / name, **kwargs)
    assert name in str(err.value)


@pytest.mark.parametrize("kind", ["wav", "mp3"])
def test_offset_beyond_end(tmp_path, kind):
    path = write_file(tmp_path, kind, click_signal(seconds=1.0), SR)
    with pytest.raises(MediaError, match="beyond the end") as err:
        load_audio(path, offset=5.0)
    assert path.name in str(err.value)


def test_bad_arguments(tmp_path):
    path = write_file(tmp_path, "wav", click_signal(seconds=0.5), SR)
    with pytest.raises(MediaError, match="offset"):
        load_audio(path, offset=-1)
    with pytest.raises(MediaError, match="duration"):
        load_audio(path, duration=0)
