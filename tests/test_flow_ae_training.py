"""Training script: exact resume, the loss goes down, outputs on disk, and the evaluation script."""

from __future__ import annotations

import json

import pytest
import torch

from dabfusion.errors import ConfigMismatchError
from dabfusion.flow_ae import PRESETS, FlowAutoEncoder
from dabfusion.flow_ae.losses import FlowAELoss, LossConfig, build_reconstruction_loss
from dabfusion.testing.shapes_toy import ShapesPairDataset
from dabfusion.training_utils import find_latest_state, load_training_state
from training import evaluate_flow_ae, train_flow_ae


COMMON = ["--data", "shapes:6", "--config", "tiny", "--perceptual", "l1ssim", "--batch-size", "4",
          "--pairs-per-video", "2", "--threads", "1", "--no-progress", "--log-every", "2",
          "--seed", "3"]


def _tensors_equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_tensors_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_resume_is_exact(tmp_path):
    """N steps straight == N/2 steps, stop, --resume, N/2 more (weights, EMA, optimizer, data position)."""
    n = 8  # 3 batches per epoch: the resume lands mid-epoch and the run crosses epochs
    steps = ["--max-steps", str(n), "--checkpoint-every", "100", "--sample-every", "0"]
    train_flow_ae.main(COMMON + steps + ["--out", str(tmp_path / "straight")])
    train_flow_ae.main(COMMON + steps + ["--out", str(tmp_path / "resumed"), "--stop-at-step", str(n // 2)])
    first = load_training_state(find_latest_state(tmp_path / "resumed"))
    assert first[0] == n // 2 and (first[1]["epoch"], first[1]["batch_in_epoch"]) == (1, 1)
    train_flow_ae.main(COMMON + steps + ["--out", str(tmp_path / "resumed"), "--resume"])
    step_a, a = load_training_state(find_latest_state(tmp_path / "straight"))
    step_b, b = load_training_state(find_latest_state(tmp_path / "resumed"))
    assert step_a == step_b == n
    for key in ("model", "ema", "optimizer", "epoch", "batch_in_epoch"):
        assert _tensors_equal(a[key], b[key]), key
    assert not _tensors_equal(a["model"], first[1]["model"])  # the second half did train
    rows = (tmp_path / "resumed" / "metrics.csv").read_text().strip().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == [2, 4, 6, 8]  # no duplicated steps


def test_outputs_on_disk_and_evaluation(tmp_path):
    out = tmp_path / "run"
    summary = train_flow_ae.main(COMMON + ["--max-steps", "6", "--checkpoint-every", "3", "--sample-every", "3",
                                           "--out", str(out)])
    assert summary["step"] == 6
    for name in ("flow_ae.safetensors", "flow_ae.json", "metrics.csv", "loss.png", "train_args.json",
                 "samples/step_00000003.png", "samples/step_00000006.png"):
        assert (out / name).is_file(), name
    header = json.loads((out / "flow_ae.json").read_text())
    assert header["extra"]["weights"] == "ema" and header["extra"]["loss"]["perceptual"] == "l1ssim"
    assert "no VGG-19" in header["extra"]["reconstruction_loss"]
    report = evaluate_flow_ae.main(["--checkpoint", str(out / "flow_ae.safetensors"), "--data", "shapes:6",
                                    "--pairs-per-video", "2", "--out", str(tmp_path / "eval.json"),
                                    "--seed", "3", "--threads", "1"])
    saved = json.loads((tmp_path / "eval.json").read_text())
    held = saved["results"]["test: held-out music"]
    assert held["pairs"] == report["results"]["test: held-out music"]["pairs"] > 0
    for key in ("psnr", "psnr_copy_ref", "ssim", "ssim_copy_ref", "psnr_gain_db"):
        assert isinstance(held[key], float)
    assert "unseen_test_dancers" in saved["split"] and "met" in saved["quality_bar"]


def test_resume_refuses_another_config(tmp_path):
    out = str(tmp_path / "run")
    base = COMMON + ["--max-steps", "2", "--sample-every", "0", "--out", out]
    train_flow_ae.main(base)
    bigger = [a if a != "tiny" else "small" for a in base] + ["--size", "32", "--resume", "--max-steps", "4"]
    with pytest.raises(ConfigMismatchError, match="block_expansion"):
        train_flow_ae.main(bigger)


def test_vgg19_without_weights_is_an_error_not_a_random_vgg(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    from dabfusion.errors import ModelFileError

    args = [a if a != "l1ssim" else "vgg19" for a in COMMON] + ["--max-steps", "1", "--out", str(tmp_path / "r")]
    with pytest.raises(ModelFileError, match="l1ssim"):
        train_flow_ae.main(args)


def test_a_few_steps_on_a_tiny_set_reduce_the_loss():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    ds = ShapesPairDataset(2, 32, pairs_per_video=4, seed=0)
    batch = [ds[i] for i in range(len(ds))]
    ref = torch.stack([b["reference"] for b in batch])
    drv = torch.stack([b["driving"] for b in batch])
    model = FlowAutoEncoder(PRESETS["tiny"])
    cfg = LossConfig(perceptual="l1ssim")
    loss_fn = FlowAELoss(cfg, build_reconstruction_loss(cfg))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for step in range(40):
        tr = loss_fn.make_transform(ref.shape[0], torch.Generator().manual_seed(step), "cpu")
        loss, _ = loss_fn(model(ref, drv, tr.transform_frame(drv)), drv, tr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses
