"""Flow targets cached once, training windows, the loss going down, and the two scripts end to end.

Runs on the toy AIST++-layout set of :mod:`dabfusion.testing.dance_toy` (click tracks, a square
turning on the beat) with a tiny flow AE of random weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dabfusion.diffusion import PRESETS, UNet3D, flow_ae_identity, training_scheduler
from dabfusion.diffusion.data import (FlowWindowDataset, TargetSpec, build_flow_targets, build_music_table,
                                      collate, needed_music_starts)
from dabfusion.diffusion.losses import diffusion_loss
from dabfusion.testing.dance_toy import write_toy_dataset
from dabfusion.flow_ae import FlowAE, FlowAutoEncoder, save_flow_ae
from dabfusion.flow_ae import get_config as flow_ae_config

torch.set_num_threads(1)
FPS = 20.0
TRACKS = {"mBR0": 100.0, "mBR1": 120.0, "mPO0": 90.0, "mPO1": 110.0}  # mBR0, mPO1: paper test tracks


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    data = write_toy_dataset(root / "data", tracks=TRACKS, dancers=(1,), duration=3.0, fps=FPS, size=32)
    torch.manual_seed(0)
    ae_path = save_flow_ae(root / "flow_ae.safetensors", FlowAutoEncoder(flow_ae_config("tiny")))
    return {"root": root, "data": data, "ae_path": ae_path}


@pytest.fixture(scope="module")
def parts(world):
    from dabfusion.data.dataset import AISTVideos
    from dabfusion.data.music_bank import MusicBank
    from dabfusion.music import MusicEncoder

    videos = AISTVideos(world["data"], split="train", fps=FPS, size=32, cache_dir=world["root"] / "cache",
                        progress=False)
    ae = FlowAE.from_checkpoint(world["ae_path"])
    ident = flow_ae_identity(world["ae_path"])
    spec = TargetSpec(n_frames=8, ref_hop=8, ref_span=16, start_hop=2)
    targets = build_flow_targets(videos, ae, ident, world["root"] / "targets", spec, progress=False)
    bank = MusicBank({v.record.name.music: v.record.music_path for v in videos.videos}, 22050)
    encoder = MusicEncoder.default()
    music = build_music_table(bank.tracks, bank.sample_rate, encoder, fps=FPS, n_frames=8,
                              starts=needed_music_starts(targets), cache_root=world["root"] / "targets", progress=False)
    return {"videos": videos, "ae": ae, "ident": ident, "spec": spec, "targets": targets, "bank": bank,
            "encoder": encoder, "music": music}


def test_targets_are_the_flow_ae_flows_and_are_cached(world, parts, monkeypatch):
    t, ae, videos = parts["targets"], parts["ae"], parts["videos"]
    assert len(t.videos) == 2  # the two train tracks, one dancer each
    v = t.videos[0]
    assert v.refs == list(range(0, 60 - 16 + 1, 8))
    flows = t.array(v.flows_file)
    assert flows.shape == (len(v.refs), 16, 3, 8, 8) and flows.dtype == np.float16
    frames = torch.from_numpy(np.moveaxis(np.array(videos.video_frames(v.record_index)), -1, 1)).float() / 255
    r = v.refs[1]
    f, o = ae.predict_flow(frames[r:r + 1], frames[r + 5:r + 6])
    np.testing.assert_allclose(flows[1, 5, :2], f[0].numpy(), atol=2e-3)
    np.testing.assert_allclose(flows[1, 5, 2:], o[0].numpy(), atol=2e-3)
    z = t.array(v.z_file)
    np.testing.assert_allclose(z[1], ae.encode(frames[r:r + 1])[0].numpy(), atol=2e-2, rtol=1e-2)
    # a second build reads the files: the flow AE is not run again
    calls = []
    monkeypatch.setattr(ae, "predict_flow", lambda *a, **k: calls.append(1))
    again = build_flow_targets(videos, ae, parts["ident"], world["root"] / "targets", parts["spec"], progress=False)
    assert calls == [] and again.videos[0].flows_file == v.flows_file
    # another flow AE (other weights) gets its own files
    other = dict(parts["ident"], weights_sha256="0" * 64)
    from dabfusion.diffusion.data import targets_directory

    assert targets_directory(world["root"], other, parts["spec"]) != targets_directory(world["root"], parts["ident"], parts["spec"])


def test_music_table_is_the_encoder_call_of_each_window(parts):
    track = parts["targets"].videos[0].track
    tm = parts["music"][track]
    start = int(tm.starts[3])
    emb = parts["encoder"].encode(parts["bank"].tracks[track], 22050, n_frames=8, fps=FPS, start=start / FPS)
    g, f = tm.at(start)
    np.testing.assert_allclose(g, emb.global_vec, atol=1e-6)
    np.testing.assert_allclose(f, emb.frame_features, atol=1e-6)


def test_windows_draws(parts):
    ds = FlowWindowDataset(parts["targets"], parts["music"], flow_scale=2.0, windows_per_ref=3, p_first=0.4,
                           p_known=0.8, max_known=4, p_drop=0.2, seed=5)
    items = [ds[i] for i in range(len(ds))]
    it = items[0]
    assert it["x0"].shape == (3, 8, 8, 8) and it["z0"].shape == (16, 8, 8)
    assert it["music"].shape == (12,) and it["beats"].shape == (8, 8) and it["known_mask"].shape == (8,)
    draws0 = [ds.draw(i) for i in range(len(ds))]
    offsets = [d[2] for d in draws0]
    knowns = [d[3] for d in draws0]
    assert 0 in offsets and any(o > 0 for o in offsets)
    drops = [d[4] for d in draws0]
    assert any(drops) and not all(drops)  # classifier-free guidance dropout happens in training
    assert all(bool(items[i]["drop"]) == drops[i] for i in range(len(ds)))
    for i, (o, k) in enumerate(zip(offsets, knowns)):
        assert int(items[i]["known_mask"].sum()) == k and k <= 4
        if o == 0:
            assert k in (0, 1)
            torch.testing.assert_close(items[i]["x0"][:, 0], torch.tensor([0.0, 0.0, 1.0]).view(3, 1, 1).expand(3, 8, 8))
    # a pure function of (seed, epoch, index)
    assert torch.equal(ds[4]["x0"], items[4]["x0"]) and ds.draw(4) == ds.draw(4)
    ds.set_epoch(1)
    assert [ds.draw(i) for i in range(len(ds))] != draws0  # new windows each epoch


def test_a_few_steps_reduce_the_loss(parts):
    torch.manual_seed(0)
    config = PRESETS["tiny"]
    ds = FlowWindowDataset(parts["targets"], parts["music"], flow_scale=2.0, seed=0)
    batch = collate([ds[i] for i in range(4)])
    model = UNet3D(config)
    sched = training_scheduler(config)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)

    def loss_at(seed):
        return diffusion_loss(model, sched, config, batch, generator=torch.Generator().manual_seed(seed))

    with torch.no_grad():
        before = float(np.mean([float(loss_at(s)) for s in range(4)]))
    for step in range(20):
        loss = loss_at(100 + step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(np.mean([float(loss_at(s)) for s in range(4)]))
    assert after < 0.7 * before, (before, after)


def test_train_resume_exact_then_evaluate(world, tmp_path):
    from safetensors.torch import load_file

    from training import evaluate_beat_following, train_diffusion

    common = ["--data", str(world["data"]), "--flow-ae", str(world["ae_path"]), "--config", "tiny", "--fps", str(FPS),
              "--split", "paper", "--cache-dir", str(world["root"] / "cache"), "--max-steps", "4",
              "--batch-size", "3", "--log-every", "1", "--threads", "1", "--no-progress", "--checkpoint-every", "100"]
    straight = tmp_path / "straight"
    train_diffusion.main(common + ["--out", str(straight), "--sample-every", "4", "--num-samples", "1",
                                   "--sample-steps", "2", "--sample-frames", "10"])
    resumed = tmp_path / "resumed"
    train_diffusion.main(common + ["--out", str(resumed), "--sample-every", "0", "--stop-at-step", "2"])
    out = train_diffusion.main(common + ["--out", str(resumed), "--sample-every", "0", "--resume"])
    assert out["step"] == 4
    a = load_file(str(straight / "diffusion.safetensors"))
    b = load_file(str(resumed / "diffusion.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = (straight / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss") and len(rows) == 5
    assert (straight / "loss.png").stat().st_size > 0
    samples = sorted((straight / "samples").glob("*.mp4"))
    assert len(samples) == 1
    import av

    with av.open(str(samples[0])) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
    # a state saved before flow_power existed (its config lacks the key) still resumes
    old = tmp_path / "old"
    train_diffusion.main(common + ["--out", str(old), "--sample-every", "0", "--stop-at-step", "2", "--flow-power", "1"])
    state_json = next((old / "checkpoints").glob("step_*")) / "state.json"
    meta = json.loads(state_json.read_text())
    del meta["state"]["config"]["flow_power"]
    state_json.write_text(json.dumps(meta))
    assert train_diffusion.main(common + ["--out", str(old), "--sample-every", "0", "--flow-power", "1",
                                          "--resume"])["step"] == 4
    # warm start: the exported weights come back unchanged after a step at lr 0, under another flow_scale
    warm = train_diffusion.main(common + ["--out", str(tmp_path / "warm"), "--sample-every", "0", "--max-steps", "1",
                                          "--lr", "0", "--flow-scale", "3.5",
                                          "--init-weights", str(straight / "diffusion.safetensors")])
    w = load_file(warm["export"])
    assert all(torch.equal(a[k], w[k]) for k in a)
    # a wall-clock budget: save, export and stop cleanly when it is spent (here: after the first step)
    budget = train_diffusion.main(common + ["--out", str(tmp_path / "budget"), "--sample-every", "0", "--max-steps", "50",
                                            "--max-minutes", "0.0001"])
    assert budget["step"] == 1 and (tmp_path / "budget" / "diffusion.safetensors").is_file()
    assert (tmp_path / "budget" / "checkpoints" / "step_00000001").is_dir()
    with pytest.raises(SystemExit, match="does not fit this model"):
        train_diffusion.main(common + ["--out", str(tmp_path / "bad"), "--no-beat-features",
                                       "--init-weights", str(straight / "diffusion.safetensors")])
    header = json.loads((straight / "diffusion.json").read_text())
    assert header["config"]["flow_ae"]["weights_sha256"] and header["config"]["music_spec"]["global_dim"] == 12
    assert header["config"]["beat_features"] is True and header["config"]["beat_dim"] == 8
    assert header["config"]["flow_power"] == 0.5  # the trainer's default: companded flows
    # and beat time, 4 beats of 8 samples, v-prediction, temporal convolutions (docs/diffusion_lab_log.md)
    assert (header["config"]["time_base"], header["config"]["n_frames"]) == ("beats", 32)
    assert header["config"]["prediction_type"] == "v_prediction" and header["config"]["temporal_kernel"] == 3

    res = evaluate_beat_following.main(["--data", str(world["data"]), "--flow-ae", str(world["ae_path"]), "--split", "paper",
                                   "--cache-dir", str(world["root"] / "cache"), "--fps", str(FPS),
                                   "--checkpoint", str(straight / "diffusion.safetensors"),
                                   "--ablation-checkpoint", str(resumed / "diffusion.safetensors"),
                                   "--out", str(tmp_path / "eval"), "--max-videos", "2", "--seconds", "2.5",
                                   "--steps", "2", "--ddpm-steps", "4", "--sampler-videos", "1", "--long-videos", "1",
                                   "--threads", "1"])
    for key in ("main", "delay", "samplers", "long", "ablation"):
        assert key in res
    s = res["main"]["summary"]
    # the metric tells the true dance from the same dance on other music or half a beat late
    assert s["gt_mm_align"] > s["gt_mis_mm_align"] + 0.1, s
    assert s["gt_mm_align"] > s["gt_late_mm_align"] + 0.1, s
    assert {"gen_mm_align", "gt_mm_align", "mis_mm_align", "gen_av_align", "gt_av_align_original", "rec_av_align",
            "rec_mis_mm_align", "gen_over_rec", "beats_ratio_gen_over_gt", "beats_within_25pct_gen",
            "music_near_border"} <= set(s)
    # the reconstruction ceiling, beat counts and speed minima at window borders are measured
    for key in ("rec_mm_align", "gt_kinematic_beats", "rec_kinematic_beats", "gen_kinematic_beats",
                "kin_near_border"):
        assert np.isfinite(s[key]), key
    assert 0.0 <= s["kin_near_border"] <= 1.0
    # motion amplitude: the generated clips' mean Farneback speed over the ground truth's, same clips
    assert s["gt_mean_speed"] > 0 and np.isfinite(s["motion_amplitude"]) and np.isfinite(s["motion_amplitude_of_means"])
    assert np.isfinite(res["samplers"]["summary"]["ddpm_motion_amplitude"])
    assert np.isfinite(res["delay"]["summary"]["shift_beats"])
    assert res["long"]["summary"]["frames"] == 50 and "flow_jump_ratio" in res["long"]["summary"]
    assert np.isfinite(res["samplers"]["summary"]["time_ratio_ddpm_over_dpm"])
    assert (tmp_path / "eval" / "results.json").is_file() and (tmp_path / "eval" / "speed_vs_borders.png").stat().st_size
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "motion amplitude" in report
    assert "Table 6" in report and "| flow AE reconstruction |" in report and "Rhythm against the window layout" in report
