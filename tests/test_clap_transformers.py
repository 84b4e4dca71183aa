"""CLAP's audio tower through transformers: LAION-CLAP .pt checkpoints mapped onto
ClapAudioModelWithProjection give laion_clap's own embedding; Hugging Face CLAP folders load; the
mel front end equals torchaudio's, torchlibrosa's and transformers' feature extractor; nothing
imports laion_clap. Small random HTSATs (patch width 16) keep it to seconds."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from dabfusion.errors import ModelFileError
from dabfusion.music import clap_branch as cb
from dabfusion.testing import clap_reference as reference
from dabfusion.testing.clap_reference import TINY, clips, randomise

HAS_LAION = importlib.util.find_spec("laion_clap") is not None
needs_laion = pytest.mark.skipif(not HAS_LAION, reason="laion-clap is not installed (pip install .[laion])")
ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def laion_tower(fusion: str | None, seed: int = 0):
    from dabfusion.music._clap_laion import LaionClapAudioEncoder

    torch.manual_seed(seed)
    return randomise(LaionClapAudioEncoder("tiny-test", fusion, htsat=TINY), seed)


@pytest.mark.parametrize("case", sorted(reference.CASES))
def test_laion_checkpoint_through_transformers_equals_laion_claps_saved_embedding(case, tmp_path):
    """Without laion_clap (numpy 2): the tiny random checkpoint rebuilt from its seed, loaded through the
    product's LAION .pt path, embeds the test clips as laion_clap's HTSAT did on the same file
    (tests/data/clap_laion_reference.npz, written by scripts/make_clap_reference.py in a numpy-1 venv)."""
    saved = np.load(reference.REFERENCE)
    path = reference.write_checkpoint(reference.CASES[case], tmp_path / "clap.pt")
    assert reference.audio_fingerprint(path) == str(saved[f"{case}/fingerprint"]), (
        "the rebuilt checkpoint is not the one the reference was computed on: re-run "
        "scripts/make_clap_reference.py in a venv with laion-clap")
    ours = cb.load_clap_audio(path)
    assert ours.backend == "transformers" and ours.fusion_type == reference.CASES[case]
    np.testing.assert_allclose(ours.embed_clips(clips()), saved[f"{case}/embedding"], atol=2e-5)


@needs_laion
@pytest.mark.parametrize("fusion", [None, "aff_2d", "iaff_2d"])
def test_laion_checkpoint_through_transformers_equals_laion_clap(fusion, tmp_path):
    ref = laion_tower(fusion)
    path = cb.save_official_layout(ref, tmp_path / "clap.pt")  # official layout, module. prefix
    ours = cb.load_clap_audio(path)
    assert isinstance(ours, cb.ClapAudioEncoder) and ours.backend == "transformers"
    assert ours.fusion_type == fusion and ours.amodel.startswith("HTSAT-w16")
    assert ours.frontend.mel_scale == ("htk" if fusion else "slaney")
    x = clips()
    want = ref.embed_clips(x)
    np.testing.assert_allclose(ours.embed_clips(x), want, atol=2e-5)
    # the optional laion_clap backend reads the same file to the same vector and fingerprint,
    # so adapters trained under one backend run under the other
    theirs = cb.load_clap_audio(path, backend="laion_clap")
    np.testing.assert_allclose(theirs.embed_clips(x), want, atol=2e-5)
    assert ours.identity() == theirs.identity()
    assert ours.identity()["fingerprint"] == cb.mf.state_dict_fingerprint(
        cb.audio_state_dict(cb.mf.load_checkpoint(path, "clap")["state_dict"]))


@needs_laion
def test_export_from_transformers_loads_into_laion_clap(tmp_path):
    """hf_to_laion writes every official key: laion_clap's HTSAT loads the file strictly."""
    from dabfusion.music._clap_laion import LaionClapAudioEncoder

    ours = randomise(cb.ClapAudioEncoder.from_hf_config(cb.tiny_hf_config()), seed=3)
    path = cb.save_official_layout(ours, tmp_path / "export.pt")
    audio = cb.audio_state_dict(cb.mf.load_checkpoint(path, "clap")["state_dict"])
    ref = LaionClapAudioEncoder("tiny-test", None, htsat=TINY)
    mine = ref.state_dict()
    assert set(audio) == set(mine)
    for k in ("audio_branch.spectrogram_extractor.stft.conv_real.weight",
              "audio_branch.spectrogram_extractor.stft.conv_imag.weight",
              "audio_branch.logmel_extractor.melW", "audio_branch.layers.0.blocks.1.attn_mask",
              "audio_branch.layers.1.blocks.0.attn.relative_position_index"):
        torch.testing.assert_close(audio[k], mine[k], atol=1e-5, rtol=1e-4)  # rebuilt as laion does
    ref.load_state_dict(audio, strict=True)
    x = clips(1)
    np.testing.assert_allclose(ref.embed_clips(x), ours.embed_clips(x), atol=2e-5)


def test_official_htsat_sizes_load_by_name(tmp_path):
    """A file saved from ClapAudioEncoder("HTSAT-tiny", aff fusion) reloads as that model."""
    torch.manual_seed(0)
    model = randomise(cb.ClapAudioEncoder("HTSAT-tiny", fusion_type="aff_2d"))
    path = cb.save_official_layout(model, tmp_path / "630k-fusion-best.pt")
    audio = cb.audio_state_dict(cb.mf.load_checkpoint(path, "clap")["state_dict"])
    assert cb.detect_layout(audio, path) == ("HTSAT-tiny", "aff_2d")
    for name, size in cb.HTSAT_SIZES.items():
        assert cb.amodel_name(size["width"], size["depths"], size["heads"]) == name
    assert cb.amodel_name(96, (2, 2, 6, 2), (4, 8, 16, 32), n_fft=1536) == "HTSAT-tiny-win-1536"


def test_hf_folders_load_through_the_same_loader(tmp_path):
    """An audio-only HF folder and a whole ClapModel (text tower included) give the tower."""
    from transformers import ClapConfig, ClapModel, ClapTextConfig

    torch.manual_seed(0)
    text = ClapTextConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                          intermediate_size=16, max_position_embeddings=40)
    full = ClapModel(ClapConfig(text_config=text.to_dict(), audio_config=cb.tiny_hf_config().to_dict(),
                                projection_dim=512)).eval()
    randomise(full.audio_model, 5)
    clap_dir = tmp_path / "clap"
    full.save_pretrained(clap_dir / "music_clap")  # config.json (model_type "clap") + model.safetensors
    assert json.loads((clap_dir / "music_clap" / "config.json").read_text())["model_type"] == "clap"
    x = clips(2)
    by_name = cb.load_clap_audio("music_clap", [clap_dir])
    assert by_name.source == "music_clap/model.safetensors" and by_name.fusion_type is None
    assert not any(k.startswith("text") for k in by_name.state_dict())
    e = by_name.embed_clips(x)
    # transformers' own ClapModel on the same log-mel gives the same (normalised) vector
    with torch.no_grad():
        clip = torch.from_numpy(np.stack([cb.repeat_pad(cb.quantize_int16(c), cb.CLIP_SAMPLES) for c in x]))
        ref = full.get_audio_features(input_features=by_name.logmel(clip))
        ref = getattr(ref, "pooler_output", ref)
        ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    np.testing.assert_allclose(e, ref, atol=2e-5)
    # the same weights as an audio-only folder, found with no name, by path, or by its weight file
    cb.save_hf_folder(by_name, tmp_path / "solo" / "clap_audio")
    for arg, dirs in ((None, [tmp_path / "solo"]), (tmp_path / "solo" / "clap_audio", []),
                      ("clap_audio/model.safetensors", [tmp_path / "solo"])):
        again = cb.load_clap_audio(arg, dirs)
        np.testing.assert_allclose(again.embed_clips(x), e, atol=1e-6)
    assert again.identity()["fingerprint"] == by_name.identity()["fingerprint"]


def test_hf_folder_errors(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "clap_audio_model"}))
    with pytest.raises(ModelFileError, match="none of model.safetensors"):
        cb.load_clap_audio(folder)
    with pytest.raises(ModelFileError, match="laion_clap reads only"):
        cb.load_clap_audio(folder, backend="laion_clap")
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelFileError, match="Hugging Face CLAP folder"):  # not CLAP: not found
        cb.load_clap_audio(folder)
    with pytest.raises(ModelFileError, match="ComfyUI/models/clap/"):
        cb.load_clap_audio(None, [tmp_path / "empty"])


@pytest.mark.parametrize("mel_scale", ["slaney", "htk"])
def test_log_mel_matches_transformers_feature_extractor(mel_scale):
    from transformers import ClapFeatureExtractor

    fe = cb.MelFrontend(mel_scale=mel_scale)
    x = cb.quantize_int16(clips(4)[1])
    ours = cb.LogMel(fe)(torch.from_numpy(x)[None])[0, 0].numpy()
    hf = ClapFeatureExtractor(feature_size=64, sampling_rate=48000, hop_length=480, max_length_s=10,
                              fft_window_size=1024, frequency_min=50, frequency_max=14000,
                              padding="repeatpad", truncation="fusion" if mel_scale == "htk" else "rand_trunc")
    theirs = hf(x, sampling_rate=48000, return_tensors="np")["input_features"][0, 0]
    assert ours.shape == theirs.shape == (1001, 64)
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_log_mel_matches_torchaudio_for_fusion_models():
    """CLAP's data code makes the fusion models' input with torchaudio (HTK, no norm, dB)."""
    torchaudio = pytest.importorskip("torchaudio")
    fe = cb.MelFrontend(mel_scale="htk")
    x = torch.from_numpy(cb.quantize_int16(clips(5)[1]))[None]
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=48000, n_fft=1024, win_length=1024, hop_length=480, center=True, pad_mode="reflect",
        power=2.0, norm=None, n_mels=64, f_min=50, f_max=14000)(x)
    ref = torchaudio.transforms.AmplitudeToDB(top_db=None)(mel).transpose(1, 2)
    torch.testing.assert_close(cb.LogMel(fe)(x)[:, 0], ref, atol=2e-3, rtol=0)


def test_a_checkpoint_with_another_mel_bank_is_refused(tmp_path):
    model = cb.ClapAudioEncoder.from_hf_config(cb.tiny_hf_config())
    path = cb.save_official_layout(model, tmp_path / "odd.pt")
    raw = cb.mf.load_checkpoint(path, "clap")
    raw["state_dict"]["module.audio_branch.logmel_extractor.melW"] *= 2
    torch.save(raw["state_dict"], tmp_path / "odd2.pt")
    with pytest.raises(ModelFileError, match="mel filter bank other than CLAP's"):
        cb.load_clap_audio(tmp_path / "odd2.pt")


def test_loads_and_runs_with_laion_clap_unimportable(tmp_path):
    """The transformers path needs neither laion_clap nor torchlibrosa (blocked in a fresh Python)."""
    model = randomise(cb.ClapAudioEncoder.from_hf_config(cb.tiny_hf_config()), seed=7)
    pt = cb.save_official_layout(model, tmp_path / "clap" / "630k-audioset-best.pt")
    cb.save_hf_folder(model, tmp_path / "hf" / "clap_audio")
    want = model.embed(clips(6)[0], 48000)
    np.save(tmp_path / "want.npy", want)
    code = textwrap.dedent(f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("laion_clap", "torchlibrosa"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(ROOT)!r})
        import numpy as np, torch
        torch.set_num_threads(1)
        from dabfusion.music import clap_branch as cb
        x = (0.2 * np.random.default_rng(6).standard_normal(3 * 48000)).astype(np.float32)
        want = np.load({str(tmp_path / "want.npy")!r})
        for enc in (cb.load_clap_audio(None, [{str(pt.parent)!r}]), cb.load_clap_audio(None, [{str(tmp_path / "hf")!r}])):
            np.testing.assert_allclose(enc.embed(x, 48000), want, atol=1e-5)
        assert not any(m.split(".")[0] in ("laion_clap", "torchlibrosa") for m in sys.modules)
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]
