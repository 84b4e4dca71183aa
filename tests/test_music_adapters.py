"""Adapters: trained on SynthDance they tell the genre of held-out tracks; saved as safetensors +
JSON; refused on the wrong encoder; wrong files give clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dabfusion.errors import ConfigMismatchError, ModelFileError
from dabfusion.music.adapters import AdapterConfig, MusicAdapter
from dabfusion.music.encoder import MusicEncoder
from dabfusion.music.wav2clip_branch import Wav2ClipEncoder
from training import train_music_adapters as tma

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def synth(synthdance_tiny) -> Path:
    return synthdance_tiny


@pytest.fixture(scope="module")
def trained(synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapters") / "mel_adapter.safetensors"
    res = tma.main(["--data", str(synth), "--branch", "mel", "--out", str(out), "--epochs", "40",
                    "--window-seconds", "4", "--windows-per-track", "12", "--eval-windows", "6",
                    "--seed", "0"])
    return res, out


def test_adapter_tells_the_genre_of_held_out_tracks(trained):
    res, _ = trained
    assert set(res["test_tracks"]).isdisjoint(res["train_tracks"])  # never heard in training
    assert len(res["test_tracks"]) >= 3 and len(res["genres"]) >= 3
    chance = res["chance"]
    print(f"held-out genre accuracy: windows {res['test_window_accuracy']:.3f}, tracks "
          f"{res['test_track_accuracy']:.3f}, chance {chance:.3f}; predictions {res['test_predictions']}")
    assert res["test_window_accuracy"] >= chance + 0.4
    assert res["test_track_accuracy"] >= chance + 0.4


def test_saved_adapter_is_safetensors_plus_json_and_reloads(trained, synth):
    res, path = trained
    assert path.is_file() and path.with_suffix(".json").is_file()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["in_dim"] == 148 and meta["hidden"] == 512 and meta["out_dim"] == 512
    assert meta["branch"] == "mel" and meta["encoder"]["kind"] == "mel"
    assert meta["objective"] == "prototype" and meta["genres"] == res["genres"]
    assert meta["training"]["test_tracks"] == res["test_tracks"]
    assert path.read_bytes()[:8] != b"\x80\x02\x8a\nl\xfc\x9cF"  # not a torch pickle
    loaded = MusicAdapter.load(path)
    assert loaded.sha256() == meta["sha256"] == res["sha256"]
    # the music encoder uses it: e_mel is the adapter's unit vector, beats follow
    enc = MusicEncoder(mel_adapter=loaded)
    from dabfusion.media.audio import load_audio

    wave, sr = load_audio(synth / "music" / f"{res['test_tracks'][0]}.wav")
    e = enc.encode(wave, sr, n_frames=40, fps=10.0, start=1.0)
    assert [b["name"] for b in enc.spec["branches"]] == ["mel", "beats"]
    assert enc.spec["branches"][0]["adapter"]["sha256"] == meta["sha256"]
    assert e.part("mel").shape == (512,) and np.linalg.norm(e.part("mel")) == pytest.approx(1, abs=1e-4)


def test_classify_objective_and_cached_embeddings(trained, synth, tmp_path):
    cache = synth / ".cache" / "music_adapters"
    before = sorted(p.name for p in cache.iterdir())
    res = tma.main(["--data", str(synth), "--branch", "mel", "--out", str(tmp_path / "c"),
                    "--epochs", "40", "--window-seconds", "4", "--windows-per-track", "12",
                    "--eval-windows", "6", "--seed", "0", "--objective", "classify"])
    assert sorted(p.name for p in cache.iterdir()) == before  # every window came from the cache
    assert res["test_window_accuracy"] >= res["chance"] + 0.4
    ad = MusicAdapter.load(tmp_path / "c.safetensors")
    assert ad.config.objective == "classify" and hasattr(ad, "head")


def test_random_weight_encoder_is_recorded_and_checked(synth, tmp_path):
    res = tma.main(["--data", str(synth), "--branch", "wav2clip", "--random-weights", "--out",
                    str(tmp_path / "w"), "--epochs", "3", "--window-seconds", "2",
                    "--windows-per-track", "2", "--eval-windows", "1", "--seed", "7", "--no-cache"])
    ad = MusicAdapter.load(tmp_path / "w.safetensors")
    assert ad.config.encoder["kind"] == "wav2clip" and ad.config.encoder["random_weights"] is True
    assert res["encoder"]["random_weights"] is True
    torch.manual_seed(7)
    same = Wav2ClipEncoder()  # the trainer seeds the same way: same weights, same fingerprint
    enc = MusicEncoder(wav2clip=same, wav2clip_adapter=ad, beats=False)
    assert enc.encode(np.zeros(16000, np.float32), 16000).global_vec.shape == (512,)
    torch.manual_seed(8)
    with pytest.raises(ConfigMismatchError, match="trained on another encoder"):
        MusicEncoder(wav2clip=Wav2ClipEncoder(), wav2clip_adapter=ad)
    with pytest.raises(ConfigMismatchError, match="trained for the wav2clip branch"):
        MusicEncoder(mel=True, mel_adapter=ad)


def test_wrong_adapter_files(tmp_path):
    (tmp_path / "noise.safetensors").write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ModelFileError, match="noise.safetensors"):
        MusicAdapter.load(tmp_path / "noise.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ModelFileError, match="not a music adapter"):
        MusicAdapter.load(tmp_path / "other.safetensors")
    with pytest.raises(ModelFileError, match="train_music_adapters"):
        MusicAdapter.load(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="objective"):
        AdapterConfig(branch="mel", in_dim=4, objective="contrastive-text")
