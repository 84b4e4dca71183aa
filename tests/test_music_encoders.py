"""CLAP (audio tower) and Wav2CLIP built with random weights, saved in the official checkpoint
layouts, loaded through our loaders; wrong files give errors naming file, folder and source."""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pytest
import torch

from dabfusion.errors import ModelFileError
from dabfusion.music import clap_branch as cb
from dabfusion.music import model_files as mf
from dabfusion.music import wav2clip_branch as wb


@pytest.fixture(scope="module")
def clap_tiny(tmp_path_factory):
    """A random HTSAT-tiny CLAP audio tower saved as the official 630k-audioset-best.pt."""
    torch.manual_seed(0)
    model = cb.ClapAudioEncoder("HTSAT-tiny")
    folder = tmp_path_factory.mktemp("models") / "clap"
    path = cb.save_official_layout(model, folder / "630k-audioset-best.pt")
    return model, path


@pytest.fixture(scope="module")
def w2c(tmp_path_factory):
    torch.manual_seed(0)
    model = wb.Wav2ClipEncoder()
    path = wb.save_official_layout(model, tmp_path_factory.mktemp("models") / "wav2clip" / "Wav2CLIP.pt")
    return model, path


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def noise(seconds: float, sr: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((channels, int(seconds * sr)))).astype(np.float32)


def test_clap_loads_from_the_official_layout_and_skips_the_text_tower(clap_tiny):
    model, path = clap_tiny
    # like the released files (protocol 4 + numpy scalars), torch's weights_only loader refuses it
    with pytest.raises(Exception, match="Unsupported operand 149"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.load(path, map_location="cpu", weights_only=True)
    raw = mf.load_checkpoint(path, "clap")  # the restricted unpickler reads it, runs no code
    assert set(raw) >= {"epoch", "name", "state_dict", "optimizer"}
    assert isinstance(raw["optimizer"]["param_groups"][0]["lr"], np.floating)
    assert all(k.startswith("module.") for k in raw["state_dict"])
    assert any(k.startswith("module.text_branch.") for k in raw["state_dict"])
    loaded = cb.load_clap_audio(None, [path.parent])  # found by its official name in the folder
    assert loaded.amodel == "HTSAT-tiny" and loaded.fusion_type is None
    assert loaded.source == "630k-audioset-best.pt" and loaded.identity()["random_weights"] is False
    assert not any(n.startswith("text") for n in loaded.state_dict())
    assert loaded.backend == "transformers"  # no laion_clap (tests/test_clap_transformers.py)
    x = noise(3.0, 44100, channels=2)
    e = loaded.embed(x, 44100)
    assert e.shape == (512,) and e.dtype == np.float32
    assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(e, model.embed(x, 44100), atol=1e-5)  # same weights, same output


def test_clap_clip_length_handling_follows_clap(clap_tiny):
    model, _ = clap_tiny
    sr = cb.SAMPLE_RATE
    short = noise(2.5, sr)[0]
    # repeatpad: 4 whole copies of 2.5 s fill the 10 s clip exactly
    np.testing.assert_allclose(model.embed(short, sr), model.embed_clips([np.tile(short, 4)])[0], atol=1e-5)
    # quantisation as CLAP does it: int16 steps, clipped to [-1, 1]
    q = cb.quantize_int16(np.array([0.5, 2.0, -3.0, 1e-6], np.float32))
    np.testing.assert_allclose(q * 32767, np.round(q * 32767), atol=1e-3)
    assert q[1] == pytest.approx(1.0) and q[2] == pytest.approx(-1.0)
    # longer than 10 s: the mean of evenly spaced full windows (25 s -> starts 0, 7.5, 15 s)
    long = noise(25.0, sr, seed=1)[0]
    assert cb.window_starts(len(long), cb.CLIP_SAMPLES) == [0, 360000, 720000]
    wins = model.embed_clips([long[s: s + cb.CLIP_SAMPLES] for s in (0, 360000, 720000)])
    mean = wins.mean(0)
    np.testing.assert_allclose(model.embed(long, sr), mean / np.linalg.norm(mean), atol=1e-5)


def test_clap_audio_model_is_detected_from_the_weights():
    def fake(width: int, n_fft: int = 1024) -> dict:
        return {"audio_branch.patch_embed.proj.weight": torch.zeros(width, 1, 4, 4),
                "audio_branch.spectrogram_extractor.stft.conv_real.weight": torch.zeros(513, 1, n_fft)}

    assert cb.detect_layout(fake(96), "x.pt") == ("HTSAT-tiny", None)
    assert cb.detect_layout(fake(128), "x.pt") == ("HTSAT-base", None)  # music_audioset_*.pt
    assert cb.detect_layout(fake(256), "x.pt") == ("HTSAT-large", None)
    assert cb.detect_layout(fake(96, 1536), "x.pt") == ("HTSAT-tiny-win-1536", None)
    with pytest.raises(ModelFileError, match="patch width of 64"):
        cb.detect_layout(fake(64), "x.pt")


def test_clap_fusion_checkpoint_loads(tmp_path):
    torch.manual_seed(1)
    model = cb.ClapAudioEncoder("HTSAT-tiny", fusion_type="aff_2d")
    path = cb.save_official_layout(model, tmp_path / "630k-audioset-fusion-best.pt")
    loaded = cb.load_clap_audio(path)
    assert loaded.fusion_type == "aff_2d"
    e = loaded.embed(noise(1.0, 22050), 22050)
    assert e.shape == (512,) and np.isfinite(e).all()


def test_wav2clip_loads_the_official_flat_state_dict(w2c):
    model, path = w2c
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert "state_dict" not in raw and any(k.startswith("audio_encoder.") for k in raw)
    assert "audio_encoder.spectrogram.window" in raw and "audio_transform.sequential.3.weight" in raw
    loaded = wb.load_wav2clip("Wav2CLIP.pt", [path.parent])
    x = noise(4.0, 8000, channels=3)
    e = loaded.embed(x, 8000)
    assert e.shape == (512,) and np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(e, model.embed(x, 8000), atol=1e-5)
    # the wav2clip package's own loader reads the same file to the same embedding
    from wav2clip.model.encoder import ResNetExtractor

    theirs = ResNetExtractor(checkpoint=raw, scenario="frozen", transform=True).eval()
    clip = torch.from_numpy(noise(3.0, 16000)[0])[None]
    with torch.no_grad():
        ref = torch.nn.functional.normalize(theirs(clip), dim=-1)
        np.testing.assert_allclose(loaded(clip).numpy(), ref.numpy(), atol=1e-5)


@pytest.mark.parametrize("kind", ["clap", "wav2clip"])
def test_wrong_files_give_clear_errors(kind, tmp_path, clap_tiny, w2c):
    load = cb.load_clap_audio if kind == "clap" else wb.load_wav2clip
    folder, source = ("clap", "huggingface.co/lukewys/laion_clap") if kind == "clap" else \
        ("wav2clip", "lyrebird-wav2clip")
    good = clap_tiny[1] if kind == "clap" else w2c[1]
    other = w2c[1] if kind == "clap" else clap_tiny[1]

    def expect(path_or_name, *extra, dirs=()):
        with pytest.raises(ModelFileError) as ei:
            load(path_or_name, dirs)
        msg = str(ei.value)
        for s in (f"ComfyUI/models/{folder}/", source, *extra):
            assert s in msg, (s, msg)
        return msg

    expect(None, str(tmp_path), dirs=[tmp_path])                     # nothing in the folder
    expect(tmp_path / "nope.pt", "nope.pt")                          # missing file
    (tmp_path / "empty.pt").write_bytes(b"")
    expect(tmp_path / "empty.pt", "empty.pt", "empty")
    (tmp_path / "noise.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    expect(tmp_path / "noise.pt", "noise.pt", "not a readable PyTorch checkpoint")
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    expect(tmp_path / "cut.pt", "cut.pt", "truncated")
    expect(other, other.name, "no ")                                  # another model's checkpoint
    sd = mf.load_checkpoint(good, kind)
    sd = sd.get("state_dict", sd)
    dropped = next(k for k in sd if "audio" in k and k.endswith(".weight"))
    del sd[dropped]
    torch.save(sd, tmp_path / "partial.pt")
    msg = expect(tmp_path / "partial.pt", "missing key")
    assert dropped.replace("module.", "") in msg
    # a checkpoint that pickles Python objects is refused by the safe loader, unless trusted
    fresh = mf.load_checkpoint(good, kind)
    torch.save({"state_dict": fresh.get("state_dict", fresh), "args": argparse.Namespace(lr=1)},
               tmp_path / "pickled.pt")
    expect(tmp_path / "pickled.pt", "trust_pickle=True")
    if kind == "wav2clip":  # (cheap to build; the path is the same for CLAP)
        assert wb.load_wav2clip(tmp_path / "pickled.pt", trust_pickle=True).source == "pickled.pt"


def test_resolve_model_file_prefers_official_names(tmp_path):
    d1, d2 = tmp_path / "a", tmp_path / "b"
    d1.mkdir(), d2.mkdir()
    (d2 / "630k-best.pt").write_bytes(b"x")
    (d2 / "music_audioset_epoch_15_esc_90.14.pt").write_bytes(b"x")
    assert mf.resolve_model_file("clap", None, [d1, d2]).name == "music_audioset_epoch_15_esc_90.14.pt"
    assert mf.resolve_model_file("clap", "630k-best.pt", [d1, d2]) == d2 / "630k-best.pt"
    with pytest.raises(ModelFileError, match="is a folder"):
        mf.resolve_model_file("wav2clip", d1)
