"""Shared training helpers: LR schedule, resumable sharded sampler, EMA, CSV log, loss curves."""

from __future__ import annotations

import torch

from dabfusion.training_utils import EMA, CSVLogger, ResumableBatchSampler, StepLRSchedule, plot_loss_curves


def test_paper_schedule_divides_by_ten_at_40_60_80_percent():
    sched = StepLRSchedule(2e-4, total_steps=150, milestones=(0.4, 0.6, 0.8), gamma=0.1)
    assert sched.milestone_steps() == [60, 90, 120]  # the paper's epochs 60, 90, 120 of 150
    lrs = [sched.lr_at(s) for s in (0, 59, 60, 89, 90, 120, 149)]
    expected = [2e-4, 2e-4, 2e-5, 2e-5, 2e-6, 2e-7, 2e-7]
    assert all(abs(a - b) < 1e-12 for a, b in zip(lrs, expected))
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    assert sched.apply(opt, 95) == opt.param_groups[0]["lr"]
    warm = StepLRSchedule(1.0, 100, (), warmup_steps=4)
    assert [warm.lr_at(s) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_sampler_is_seeded_sharded_and_resumes_mid_epoch():
    full = ResumableBatchSampler(20, 3, seed=1)
    full.set_position(2)
    epoch2 = list(full)
    assert len(epoch2) == 6 and all(len(b) == 3 for b in epoch2)
    again = ResumableBatchSampler(20, 3, seed=1)
    again.set_position(2, 4)
    assert list(again) == epoch2[4:]
    assert len(list(again)) == 6  # the next pass starts at batch 0 again
    ranks = [ResumableBatchSampler(20, 3, seed=1, num_replicas=2, rank=r) for r in (0, 1)]
    b0, b1 = list(ranks[0]), list(ranks[1])
    assert len(b0) == len(b1) == 3
    assert not set(sum(b0, [])) & set(sum(b1, []))
    other = ResumableBatchSampler(20, 3, seed=2)
    assert list(other) != list(ResumableBatchSampler(20, 3, seed=1))


def test_ema_warmup_and_state():
    model = torch.nn.Linear(2, 1)
    w0 = model.weight.detach().clone()
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # first update: decay min(0.9, 1/10) = 0.1
    torch.testing.assert_close(ema.model.weight, 0.1 * w0 + 0.9 * torch.ones_like(w0))
    assert ema.num_updates == 1 and ema.current_decay() == min(0.9, 2 / 11)
    for _ in range(200):
        ema.update(model)
    torch.testing.assert_close(ema.model.weight, torch.ones_like(w0))
    other = EMA(torch.nn.Linear(2, 1), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.9 and other.num_updates == 201 and torch.equal(other.model.weight, ema.model.weight)


def test_csv_log_truncates_after_resume_step_and_plots(tmp_path):
    path = tmp_path / "m.csv"
    log = CSVLogger(path)
    for s in range(1, 6):
        log.log(s, {"loss": 1.0 / s})
    log.log(6, {"loss": 0.1, "term/l1": 0.05})  # a new column widens the file
    resumed = CSVLogger(path, resume_step=3)
    resumed.log(4, {"loss": 0.2})
    lines = path.read_text().strip().splitlines()
    assert lines[0] == "step,loss,term/l1"
    assert [int(line.split(",")[0]) for line in lines[1:]] == [1, 2, 3, 4]
    png = plot_loss_curves(path, tmp_path / "loss.png", smooth=2)
    assert png is not None and png.stat().st_size > 1000
