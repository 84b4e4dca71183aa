"""Beat This! built with random weights (small hyper-parameters), saved in the official Lightning
checkpoint layout, loaded through our loader; the package's own loader and inference agree with
ours on the same file; wrong files and folders give errors naming folder, file and source."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("beat_this", reason="optional extra beat_this is not installed")

from beat_this.model.beat_tracker import BeatThis  # noqa: E402

from dabfusion.errors import ModelFileError  # noqa: E402
from dabfusion.music import beat_this as bt  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: a few-hundred-kB network of the official architecture (the released one: dims 512, 6 layers)
TINY = dict(spect_dim=128, transformer_dim=32, ff_mult=2, n_layers=1, head_dim=8, stem_dim=8,
            dropout={"frontend": 0.1, "transformer": 0.2}, sum_head=True, partial_transformers=True)


def save_official(model: torch.nn.Module, path, hparams: dict, *, compiled: bool = False):
    """``model`` as a released Beat This! .ckpt: the Lightning checkpoint cut to four keys, the
    weights under ``model.`` (``model._orig_mod.`` for a torch.compile'd model), the
    LightningModule's arguments as a plain dict."""
    prefix = "model._orig_mod." if compiled else "model."
    full = dict(fps=50, lr=0.0008, weight_decay=0.01, pos_weights={"beat": 1, "downbeat": 1},
                loss_type="shift_tolerant_weighted_bce", warmup_steps=1000, max_epochs=100,
                use_dbn=False, eval_trim_beats=5, **hparams)
    ckpt = {"state_dict": {prefix + k: v.detach().clone() for k, v in model.state_dict().items()},
            "hyper_parameters": full,
            "datamodule_hyper_parameters": {"batch_size": 8},  # placeholder: inference ignores it
            "pytorch-lightning_version": "2.3.0"}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    model = BeatThis(**TINY).eval()
    with torch.no_grad():  # random batch-norm statistics, and a head bias that makes peaks > 0.5
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
        model.task_heads.beat_downbeat_lin.bias.copy_(torch.tensor([2.0, 0.5]))
    folder = tmp_path_factory.mktemp("models") / "beat_this"
    return model, save_official(model, folder / "final0.ckpt", TINY)


def clicks(seconds: float, sr: int, period: float = 0.5, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = 0.01 * rng.standard_normal(int(seconds * sr)).astype(np.float32)
    n = int(0.03 * sr)
    burst = np.sin(2 * np.pi * 90 * np.arange(n) / sr) * np.exp(-np.arange(n) / (0.008 * sr))
    for t in np.arange(0.25, seconds - 0.05, period):
        i = int(t * sr)
        x[i:i + n] += burst[: len(x[i:i + n])].astype(np.float32)
    return np.stack([x] * channels) if channels > 1 else x


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError(f"tried to download {a} {k}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_loads_the_official_layout_like_the_package_does(tiny):
    model, path = tiny
    raw = torch.load(path, map_location="cpu", weights_only=True)  # tensors, dicts, numbers only
    assert set(raw) == {"state_dict", "hyper_parameters", "datamodule_hyper_parameters",
                        "pytorch-lightning_version"}
    assert all(k.startswith("model.") for k in raw["state_dict"])
    found = bt.find_beat_this_checkpoint(path.parent)
    assert found == path
    loaded = bt.load_beat_this(found)
    assert isinstance(loaded, BeatThis) and not loaded.training
    assert loaded.source == "final0.ckpt" and loaded.fps == 50 and loaded.hparams == TINY
    ident = bt.beat_this_identity(loaded)
    assert ident["file"] == "final0.ckpt" and len(ident["fingerprint"]) == 64 and ident["fps"] == 50
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    # the package's own loader (given a local file it loads it, no download) builds the same net
    from beat_this.inference import load_model

    theirs = load_model(str(path), device="cpu")
    spect = torch.randn(1, 120, 128)
    with torch.no_grad():
        a, b = loaded(spect), theirs(spect)
    for key in ("beat", "downbeat"):
        assert a[key].shape == (1, 120)
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_beats_of_five_seconds_match_the_packages_pipeline(tiny):
    _, path = tiny
    loaded = bt.load_beat_this(path)
    sr = 44100
    wave = clicks(5.0, sr)
    beats, downbeats = bt.beat_this_beats(wave, sr, loaded)
    for times in (beats, downbeats):
        assert isinstance(times, np.ndarray) and times.ndim == 1 and times.dtype == np.float64
        assert np.all(np.diff(times) > 0)
        assert times.size == 0 or (times[0] >= 0 and times[-1] <= 5.0)
    assert beats.size > 0 and np.isin(downbeats, beats).all()
    # ComfyUI's [1, C, S] and a torch tensor give the same answer
    b2, d2 = bt.beat_this_beats(torch.from_numpy(wave)[None], sr, loaded)
    np.testing.assert_array_equal(b2, beats), np.testing.assert_array_equal(d2, downbeats)
    # the package's Audio2Beats (time-first layout) on the same local file and mono signal
    from beat_this.inference import Audio2Beats

    mono = wave.mean(axis=0)
    ref_b, ref_d = Audio2Beats(checkpoint_path=str(path), device="cpu")(mono, sr)
    ours_b, ours_d = bt.beat_this_beats(mono, sr, loaded)
    np.testing.assert_allclose(ours_b, ref_b, atol=1e-9)
    np.testing.assert_allclose(ours_d, ref_d, atol=1e-9)
    # silence and empty audio: arrays, no crash
    e_b, e_d = bt.beat_this_beats(np.zeros(0, np.float32), sr, loaded)
    assert e_b.shape == (0,) and e_d.shape == (0,)


def test_a_compiled_models_checkpoint_loads(tiny, tmp_path):
    model, _ = tiny
    path = save_official(model, tmp_path / "beat_this" / "mine.ckpt", TINY, compiled=True)
    assert bt.find_beat_this_checkpoint(path.parent) == path  # any *.ckpt when no official name
    assert bt.load_beat_this(path).fingerprint == bt.load_beat_this(tiny[1]).fingerprint


def test_missing_folder_or_file_names_the_folder_and_what_to_put_there(tmp_path):
    absent = tmp_path / "models" / "beat_this"
    with pytest.raises(ModelFileError) as ei:
        bt.find_beat_this_checkpoint(absent)
    msg = str(ei.value)
    for s in (str(absent), "does not exist", "final0.ckpt", "ComfyUI/models/beat_this/",
              "CPJKU/beat_this"):
        assert s in msg, (s, msg)
    absent.mkdir(parents=True)
    (absent / "notes.txt").write_text("x")
    with pytest.raises(ModelFileError, match=r"No Beat This! checkpoint \(\*\.ckpt\) was found in .*beat_this"):
        bt.find_beat_this_checkpoint(absent)
    with pytest.raises(ModelFileError, match="nope.ckpt"):
        bt.find_beat_this_checkpoint(absent, "nope.ckpt")
    with pytest.raises(ModelFileError, match="does not exist"):
        bt.load_beat_this(absent / "final0.ckpt")


def test_official_names_are_preferred(tmp_path):
    for name in ("aaa.ckpt", "small0.ckpt", "beat_this-final0.ckpt"):
        (tmp_path / name).write_bytes(b"x")
    assert bt.find_beat_this_checkpoint(tmp_path).name == "beat_this-final0.ckpt"
    (tmp_path / "final0.ckpt").write_bytes(b"x")
    assert bt.find_beat_this_checkpoint([tmp_path / "none", tmp_path]).name == "final0.ckpt"
    assert bt.find_beat_this_checkpoint(tmp_path, "aaa.ckpt").name == "aaa.ckpt"


def test_wrong_files_give_clear_errors(tiny, tmp_path):
    model, good = tiny
    raw = torch.load(good, map_location="cpu", weights_only=True)

    def expect(ckpt, *parts):
        path = tmp_path / "bad.ckpt"
        if isinstance(ckpt, bytes):
            path.write_bytes(ckpt)
        else:
            torch.save(ckpt, path)
        with pytest.raises(ModelFileError) as ei:
            bt.load_beat_this(path)
        msg = str(ei.value)
        for s in (str(path), "ComfyUI/models/beat_this/", *parts):
            assert s in msg, (s, msg)
        return msg

    # a weight missing, one renamed
    sd = dict(raw["state_dict"])
    dropped = "model.frontend.linear.weight"
    del sd[dropped]
    sd["model.frontend.linear.kernel"] = sd.pop("model.frontend.linear.bias")
    msg = expect({**raw, "state_dict": sd}, "missing key", "unexpected key", dropped,
                 "model.frontend.linear.kernel")
    assert "does not fit the Beat This! checkpoint layout" in msg
    # weights of another size than the hyper-parameters say
    expect({**raw, "hyper_parameters": {**raw["hyper_parameters"], "transformer_dim": 64}},
           "wrong shape")
    # no Lightning wrapper: a flat state dict (e.g. another model's file)
    expect(dict(raw["state_dict"]), "not a Beat This! checkpoint", "hyper_parameters")
    # hyper-parameters that build no model
    expect({**raw, "hyper_parameters": {**raw["hyper_parameters"], "transformer_dim": 30}},
           "do not build a Beat This! model")
    # not a checkpoint at all
    expect(np.random.default_rng(0).bytes(4096), "not a readable PyTorch checkpoint")


def test_without_the_package_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "beat_this", None)
    with pytest.raises(bt.BeatThisUnavailable, match=r"comfyui-dance-any-beat\[beat_this\]"):
        bt.load_beat_this("whatever.ckpt")
