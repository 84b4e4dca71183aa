"""The optional-weight metrics (FVD's I3D, LPIPS, CLIP-Score): real networks with random weights,
saved in the official layouts, loaded through the real loaders; and the notes when a file is missing."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
import torch

from dabfusion.errors import ModelFileError
from dabfusion.testing import eval_weights as testing

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------ I3D / FVD


@pytest.fixture(scope="module")
def i3d_file(tmp_path_factory):
    return testing.write_random_i3d(tmp_path_factory.mktemp("i3d") / "rgb_imagenet.pt")


def test_i3d_loads_the_pytorch_i3d_layout_and_gives_400_d_features(i3d_file):
    from dabfusion.evaluation.fvd import I3DFeatures, load_i3d, preprocess, try_load_i3d
    from dabfusion.evaluation.i3d import InceptionI3d

    state = torch.load(i3d_file, weights_only=True)
    assert "Mixed_5c.b3b.bn.running_var" in state and "logits.conv3d.bias" in state  # piergiaj's key names
    assert tuple(state["Conv3d_1a_7x7.conv3d.weight"].shape) == (64, 3, 7, 7, 7)
    model = load_i3d(i3d_file)
    assert torch.equal(model.state_dict()["Mixed_4f.b1b.conv3d.weight"], state["Mixed_4f.b1b.conv3d.weight"])
    video = np.random.default_rng(0).integers(0, 256, (9, 32, 32, 3), dtype=np.uint8)
    x = preprocess(video)
    assert x.shape == (1, 3, 9, 224, 224) and float(x.min()) >= -1 and float(x.max()) <= 1
    feat = I3DFeatures(model)(video)
    assert feat.shape == (400,) and np.all(np.isfinite(feat)) and np.ptp(feat) > 0
    extractor, note = try_load_i3d(i3d_file)
    assert note is None and isinstance(extractor.model, InceptionI3d)


def test_i3d_old_files_without_batch_counters_and_wrappers_load(i3d_file, tmp_path):
    from dabfusion.evaluation.fvd import load_i3d

    state = torch.load(i3d_file, weights_only=True)
    old = OrderedDict((f"module.{k}", v) for k, v in state.items() if not k.endswith("num_batches_tracked"))
    torch.save({"state_dict": old}, tmp_path / "i3d_pretrained_400.pt")  # DataParallel + Lightning wrapper
    model = load_i3d(tmp_path / "i3d_pretrained_400.pt")
    assert torch.equal(model.state_dict()["logits.conv3d.weight"], state["logits.conv3d.weight"])


def test_i3d_wrong_or_missing_files_say_which_file_is_needed(tmp_path):
    from dabfusion.evaluation.fvd import load_i3d, try_load_i3d

    extractor, note = try_load_i3d(None)
    assert extractor is None and note.startswith("FVD skipped") and "--i3d" in note and "rgb_imagenet.pt" in note
    torch.save({"conv.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="missing key"):
        load_i3d(tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not found"):
        load_i3d(tmp_path / "absent.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        load_i3d(tmp_path / "empty.pt")


def test_fvd_of_feature_sets():
    from dabfusion.evaluation.fvd import fvd

    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 400))
    assert fvd(a, a) == pytest.approx(0.0, abs=1e-6)
    assert fvd(a, a + 1.0) == pytest.approx(400.0, rel=1e-6)  # a pure shift: |mu1 - mu2|^2
    assert np.isnan(fvd(a[:1], a))


# ------------------------------------------------------------------------------------ LPIPS


@pytest.fixture(scope="module")
def lpips_file(tmp_path_factory):
    return testing.write_random_lpips(tmp_path_factory.mktemp("lpips"))


def _reference_lpips(backbone: dict, lin: dict, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS v0.1 written out step by step on torchvision's AlexNet (independent of the module)."""
    import torchvision

    net = torchvision.models.alexnet(weights=None).features
    net.load_state_dict({k[len("features."):]: v for k, v in backbone.items() if k.startswith("features.")})
    shift = torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)
    scale = torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)
    xa, xb = (2 * a - 1 - shift) / scale, (2 * b - 1 - shift) / scale
    total = torch.zeros(a.shape[0])
    for layer, end in enumerate((2, 5, 8, 10, 12)):
        start = (0, 2, 5, 8, 10)[layer]
        for i in range(start, end):
            xa, xb = net[i](xa), net[i](xb)
        na = xa / (xa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = xb / (xb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = lin[f"lin{layer}.model.1.weight"].view(1, -1, 1, 1)
        total += ((na - nb) ** 2 * w).sum(1).mean(dim=(1, 2))
    return total


def test_lpips_loads_linear_weights_and_backbone_from_files(lpips_file):
    from dabfusion.evaluation.lpips import load_lpips, try_load_lpips

    model = load_lpips(lpips_file)  # the backbone is found next to alex.pth
    assert model.net_name == "alex" and model.sources == ("alex.pth", "alexnet-owt-7be5be79.pth")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 3, 64, 64, generator=g)
    b = (a + 0.2 * torch.rand(3, 3, 64, 64, generator=g)).clamp(0, 1)
    with torch.no_grad():
        d = model(a, b)
        assert torch.allclose(model(a, a), torch.zeros(3), atol=1e-7)
        assert torch.allclose(d, model(b, a), atol=1e-6) and bool((d > 0).all())
        lin = torch.load(lpips_file, weights_only=True)
        backbone = torch.load(lpips_file.parent / "alexnet-owt-7be5be79.pth", weights_only=True)
        torch.testing.assert_close(d, _reference_lpips(backbone, lin, a, b), rtol=1e-4, atol=1e-6)
    frames_a = (a.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    frames_b = (b.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    assert model.video(frames_a, frames_b) > 0 and model.video(frames_a, frames_a) == pytest.approx(0, abs=1e-7)
    loaded, note = try_load_lpips(lpips_file)
    assert note is None and loaded is not None


def test_lpips_skip_note_and_missing_backbone(lpips_file, tmp_path):
    from dabfusion.evaluation.lpips import load_lpips, try_load_lpips

    model, note = try_load_lpips(None)
    assert model is None and note.startswith("LPIPS skipped") and "alex.pth" in note and "alexnet-owt" in note
    lonely = tmp_path / "alex.pth"
    lonely.write_bytes(lpips_file.read_bytes())
    with pytest.raises(ModelFileError, match="alexnet-owt-7be5be79.pth"):
        load_lpips(lonely, backbone=None)
    assert load_lpips(lonely, backbone=lpips_file.parent / "alexnet-owt-7be5be79.pth").net_name == "alex"
    torch.save({"lin1.model.1.weight": torch.zeros(1, 7, 1, 1)}, tmp_path / "squeeze.pth")
    with pytest.raises(ModelFileError, match="not an LPIPS"):
        load_lpips(tmp_path / "squeeze.pth")


# ------------------------------------------------------------------------------------ CLIP-Score


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    return testing.write_random_clip(root / "clip"), testing.write_random_wav2clip(root / "Wav2CLIP.pt")


def test_clip_score_is_the_mean_cosine_of_frames_and_music(clip_files):
    from dabfusion.evaluation.clip_score import try_load_clip_scorer

    clip_dir, w2c = clip_files
    assert (clip_dir / "config.json").is_file() and (clip_dir / "model.safetensors").is_file()
    scorer, note = try_load_clip_scorer(clip_dir, w2c, frames=4)
    assert note is None and scorer.image.dim == 512 and scorer.image.size == 32
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
    wave = (0.1 * rng.standard_normal(22050 * 2)).astype(np.float32)
    audio = scorer.audio_embedding(wave, 22050, key=("t", 1))
    assert audio.shape == (512,) and np.linalg.norm(audio) == pytest.approx(1.0)
    cs = scorer.score(frames, audio)
    picked = frames[[0, 3, 6, 9]]
    emb = scorer.image.embed(picked)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert cs == pytest.approx(float((emb @ audio).mean()), rel=1e-6) and -1 <= cs <= 1
    # the vision tower is the one in the folder: CLIPModel's own image features agree
    from transformers import CLIPModel

    with torch.no_grad():
        full = CLIPModel.from_pretrained(str(clip_dir), local_files_only=True).eval()
        ref = full.get_image_features(pixel_values=scorer.image.preprocess(picked))
        ref = getattr(ref, "pooler_output", ref)
    np.testing.assert_allclose(emb, torch.nn.functional.normalize(ref, dim=-1).numpy(), rtol=1e-4, atol=1e-5)


def test_clip_score_notes_and_bad_folders(clip_files, tmp_path):
    from dabfusion.evaluation.clip_score import load_clip_image_encoder, try_load_clip_scorer

    clip_dir, w2c = clip_files
    scorer, note = try_load_clip_scorer(None, w2c)
    assert scorer is None and note.startswith("CLIP-Score skipped") and "--clip" in note
    scorer, note = try_load_clip_scorer(clip_dir, None)
    assert scorer is None and "--wav2clip" in note and "Wav2CLIP.pt" in note
    with pytest.raises(ModelFileError, match="config.json"):
        load_clip_image_encoder(tmp_path)
    bad = tmp_path / "bert"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelFileError, match="not CLIP"):
        load_clip_image_encoder(bad)
