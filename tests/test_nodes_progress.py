"""Every long node moves its progress bar in several steps and stops on a cancel.

Each node test runs twice: through the compat fallback (plain pytest: the quiet counter and its
interrupt check) and through ComfyUI's real ``comfy.utils.ProgressBar`` with a global progress hook
shaped like ComfyUI's server hook, cancelled with the real
``comfy.model_management.interrupt_current_processing``. The ComfyUI variant needs a ComfyUI
checkout named by ``DABFUSION_COMFYUI`` (and its requirements in this Python); without one it is
skipped and says why. A cancel is simulated at the k-th progress report; the node must raise there
(not finish the work first) and Video Combine must leave no file behind.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from pack_loader import load_pack
from real_comfyui import comfyui  # noqa: F401 - the fixture

from dabfusion.pipeline import FlowLatent
from dabfusion.testing.random_bundle import make_random_bundle

torch.set_num_threads(1)
PACK = "dab_pack_progress"
NODES = load_pack(PACK).NODE_CLASS_MAPPINGS
COMPAT = importlib.import_module(f"{PACK}.nodes.comfy_compat")
SR = 22050


def run(key, **kwargs):
    cls = NODES[key]
    return getattr(cls(), cls.FUNCTION)(**kwargs)


# ------------------------------------------------------------------------------ the two hosts


class Interrupted(Exception):
    """The fallback's cancel (ComfyUI raises its own InterruptProcessingException)."""


@dataclass
class Host:
    """Where progress reports land: ``seen`` (done, total) in order; cancel at report ``interrupt_at``."""

    name: str
    exception: type
    seen: list = field(default_factory=list)
    interrupt_at: int | None = None

    def cancel_now(self) -> bool:
        return self.interrupt_at is not None and len(self.seen) >= self.interrupt_at


@pytest.fixture(params=["fallback", "comfyui"])
def host(request, monkeypatch):
    if request.param == "fallback":
        h = Host("fallback", Interrupted)
        monkeypatch.setattr(COMPAT, "comfy_utils", None)
        monkeypatch.setattr(COMPAT, "model_management", None)
        original = COMPAT.ProgressBar.update_absolute
        pending = []

        def update_absolute(self, done, total=None):
            h.seen.append((int(done), int(total if total is not None else self.total)))
            if h.cancel_now():
                pending.append(True)  # the user pressed cancel; the bar's own check must raise
            original(self, done, total)

        def check_interrupted():
            if pending:
                pending.clear()
                raise Interrupted

        monkeypatch.setattr(COMPAT.ProgressBar, "update_absolute", update_absolute)
        monkeypatch.setattr(COMPAT, "check_interrupted", check_interrupted)
        yield h
        return
    cu, mm = request.getfixturevalue("comfyui")
    h = Host("comfyui", mm.InterruptProcessingException)
    monkeypatch.setattr(COMPAT, "comfy_utils", cu)
    monkeypatch.setattr(COMPAT, "model_management", mm)

    def hook(value, total, preview_image, prompt_id=None, node_id=None):  # as main.py's hijack_progress
        mm.throw_exception_if_processing_interrupted()
        h.seen.append((int(value), int(total)))
        if h.cancel_now():
            mm.interrupt_current_processing()  # the cancel button (POST /interrupt)
            mm.throw_exception_if_processing_interrupted()

    previous = cu.PROGRESS_BAR_HOOK
    cu.set_progress_bar_global_hook(hook)
    mm.interrupt_current_processing(False)
    yield h
    cu.set_progress_bar_global_hook(previous)
    mm.interrupt_current_processing(False)


def assert_steps(seen, total=None, at_least=3):
    """Progress ends at its total, got there in several increasing steps, with one total throughout."""
    assert seen, "no progress was reported"
    done = [d for d, _ in seen]
    totals = {t for _, t in seen}
    assert len(totals) == 1, f"the total changed: {seen}"
    assert done == sorted(done) and len(set(done)) >= at_least, f"not several steps: {seen}"
    assert done[-1] == seen[-1][1], f"progress stopped short of its total: {seen}"
    if total is not None:
        assert seen[-1][1] == total


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    bundle = make_random_bundle(tmp_path_factory.mktemp("m") / "tiny")
    return run("DabFusionModelLoader", checkpoint=str(bundle), device="cpu")[0]


def _audio(seconds: float, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    wave = 0.05 * rng.standard_normal(n)
    for k in np.arange(0.25, seconds, 0.5):  # clicks at 120 bpm: something to find a beat in
        a = int(k * SR)
        wave[a: a + 400] += np.hanning(800)[400:] * 0.9
    return {"waveform": torch.from_numpy(wave.astype(np.float32))[None, None], "sample_rate": SR}


@pytest.fixture
def out_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DABFUSION_OUTPUT_DIR", str(tmp_path / "output"))
    return tmp_path / "output"


# ------------------------------------------------------------------------------ Music Encoder


def forget(encoder) -> None:
    """Empty the encoder's caches, so the analysis really runs (each test runs once per host)."""
    for cache in (encoder._cache, encoder._analyses, encoder._branch_vectors):
        cache.clear()


def test_music_encoder_reports_each_stage(host, model):
    audio = _audio(3.0, seed=1)
    forget(model.music)
    clip, seconds, tempo = run("DabFusionMusicEncoder", model=model, audio=audio)
    assert_steps(host.seen, total=4)  # the beat analysis' four stages
    assert abs(seconds - 3.0) < 1e-3 and tempo == clip.summary.tempo > 0


def test_music_encoder_stops_on_cancel_and_caches_nothing_half_done(host, model):
    audio = _audio(3.0, seed=2)
    forget(model.music)
    host.interrupt_at = 2
    with pytest.raises(host.exception):
        run("DabFusionMusicEncoder", model=model, audio=audio)
    assert [d for d, _ in host.seen] == [1, 2]  # stopped after the second of four stages
    host.interrupt_at, host.seen[:] = None, []
    _, _, tempo = run("DabFusionMusicEncoder", model=model, audio=audio)
    assert_steps(host.seen, total=4)  # the analysis ran again from the start
    assert tempo > 0


# ------------------------------------------------------------------------------ Segment Person

PHOTO = torch.zeros(1, 90, 60, 3)
PHOTO[0, 20:80, 25:35] = torch.tensor([0.9, 0.2, 0.2])
PERSON = torch.zeros(1, 90, 60)
PERSON[0, 20:80, 25:35] = 1.0
SEGMENT = dict(image=PHOTO, yolo_model="none", sam_model="none", background="studio", size=64, person="largest",
               index=0, height=0.7, fit="crop", invert_mask=False, mask=PERSON)


def test_segment_person_reports_each_step(host):
    frame, mask = run("DabFusionSegmentPerson", **SEGMENT)
    assert frame.shape == (1, 64, 64, 3) and mask.max() > 0.5
    assert_steps(host.seen, total=4)


def test_segment_person_stops_on_cancel(host):
    host.interrupt_at = 2
    with pytest.raises(host.exception):
        run("DabFusionSegmentPerson", **SEGMENT)
    assert len(host.seen) == 2 and host.seen[-1][0] < 4  # before the background and the compositing


def test_segment_person_steps_with_detection_models(monkeypatch):
    """With models, detection and segmentation are a step each (stubbed here: the steps, not the models)."""
    from dabfusion.segment import SegmentPerson
    from dabfusion.segment.detect import PersonChoice

    calls = []

    def detect(self, image, rule="largest", index=0):
        calls.append("detect")
        return PersonChoice.__new__(PersonChoice)

    def segment(self, image, choice, **_):
        calls.append("segment")
        return PERSON[0].numpy(), "sam", 0.9

    monkeypatch.setattr(SegmentPerson, "detect", detect)
    monkeypatch.setattr(SegmentPerson, "segment", segment)
    seen = []
    SegmentPerson("yolo.pt", "sam.pth")(PHOTO[0].numpy(), size=64, progress=lambda d, t: seen.append((d, t)))
    assert calls == ["detect", "segment"] and seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


# ------------------------------------------------------------------------------ FlowAE Encode


def test_flow_ae_encode_reports_each_step_and_stops_on_cancel(host, model):
    image = torch.rand(1, 40, 48, 3)
    latent, reference = run("DabFusionFlowAEEncode", model=model, image=image, fit="pad")
    assert_steps(host.seen, total=2)
    assert torch.allclose(latent.z0, model.encode_reference(image, fit="pad").z0)  # same as one call
    host.seen[:], host.interrupt_at = [], 2
    with pytest.raises(host.exception):
        run("DabFusionFlowAEEncode", model=model, image=image, fit="pad")
    assert host.seen[-1] == (1, 2)


# ------------------------------------------------------------------------------ Warp and Decode


def _flows(model, n: int) -> FlowLatent:
    s = model.config.latent_size
    return FlowLatent(flow=torch.zeros(n, 2, s, s), occlusion=torch.ones(n, 1, s, s), fps=30.0, seed=0, window=8,
                      overlap=2)


def test_warp_and_decode_reports_each_chunk_and_stops_on_cancel(host, model, monkeypatch):
    latent = run("DabFusionFlowAEEncode", model=model, image=torch.rand(1, 32, 32, 3))[0]
    host.seen[:] = []
    frames, fps = run("DabFusionWarpDecode", model=model, latent=latent, flows=_flows(model, 10), chunk_size=3)
    assert frames.shape[0] == 10 and fps == 30.0
    assert_steps(host.seen, total=4)  # 10 frames in chunks of 3
    decoded = []
    decode = model.flow_ae.decode
    monkeypatch.setattr(model.flow_ae, "decode", lambda *a, **k: (decoded.append(1), decode(*a, **k))[1])
    host.seen[:], host.interrupt_at = [], 3
    with pytest.raises(host.exception):
        run("DabFusionWarpDecode", model=model, latent=latent, flows=_flows(model, 10), chunk_size=3)
    assert len(decoded) == 2  # the start, two chunks, then stopped: the other two never ran


# ------------------------------------------------------------------------------ Video Combine


def _frames(n: int) -> torch.Tensor:
    return torch.rand(n, 32, 32, 3)


def test_video_combine_reports_frames(host, out_dir):
    out = run("DabFusionVideoCombine", images=_frames(12), fps=12.0, filename_prefix="p/dance", crf=30,
              audio=_audio(1.0))
    assert Path(out["result"][1]).is_file()
    assert_steps(host.seen, total=12, at_least=12)  # 0, then every frame
    assert host.seen[0] == (0, 12)


def test_video_combine_cancel_mid_encode_leaves_no_file(host, out_dir):
    host.interrupt_at = 5
    with pytest.raises(host.exception):
        run("DabFusionVideoCombine", images=_frames(20), fps=12.0, filename_prefix="p/dance", crf=30,
            audio=_audio(2.0))
    assert host.seen[-1] == (4, 20)  # stopped after four of twenty frames
    assert [p for p in out_dir.rglob("*") if p.is_file()] == []  # no video, no .partial file


def test_video_combine_progress_is_bounded_for_long_videos(host, out_dir):
    run("DabFusionVideoCombine", images=torch.zeros(230, 16, 16, 3), fps=30.0, filename_prefix="long", crf=40)
    assert_steps(host.seen, total=230, at_least=50)
    assert len(host.seen) <= 102  # about one update per 1 % (each one is a message to the browser)


# ------------------------------------------------------------------------------ the library callbacks


def test_write_mp4_progress_per_frame_and_cancel_removes_the_partial_file(tmp_path):
    from dabfusion.media.video import write_mp4

    seen = []
    frames = (np.full((16, 16, 3), i * 20, np.uint8) for i in range(6))  # a generator: no known total
    write_mp4(tmp_path / "a.mp4", frames, 10.0, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(i, None) for i in range(1, 7)]

    def cancel(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_mp4(tmp_path / "b.mp4", np.zeros((8, 16, 16, 3), np.uint8), 10.0, progress=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_music_encoder_progress_counts_batches_of_windows():
    from dabfusion.music import MusicEncoder

    enc = MusicEncoder(mel=True, batch_size=1)
    forget(enc)
    wave = _audio(25.0)["waveform"][0].numpy()
    seen = []
    full = enc.encode(wave, SR, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 7) for i in range(1, 8)]  # 3 windows of 10 s, one per batch, then 4 beat stages
    again = []
    assert enc.encode(wave, SR, progress=lambda d, t: again.append((d, t))) is full and again == [(1, 1)]

    def cancel(done, total):
        if done == 2:
            raise Interrupted

    fresh = MusicEncoder(mel=True, batch_size=1)
    forget(fresh)  # the tracker's analyses are shared by every encoder and node (beat_grid.TRACKED_ANALYSES)
    with pytest.raises(Interrupted):
        fresh.encode(wave, SR, progress=cancel)
    redo = []
    emb = fresh.encode(wave, SR, progress=lambda d, t: redo.append((d, t)))
    assert redo == seen and np.allclose(emb.global_vec, full.global_vec)
