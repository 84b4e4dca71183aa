"""The pipeline object on a random-weight bundle written by the official checkpoint writers: loading
and its cross-checks, any length in windows, seeds, the music reaching the motion, the reference
paths, clear errors, MP4 + audio."""

from __future__ import annotations

import shutil

import av
import numpy as np
import pytest
import torch

from dabfusion import pipeline as P
from dabfusion.errors import ConfigMismatchError, DabFusionError, MediaError, ModelFileError
from dabfusion.model_bundle import find_bundle_files
from dabfusion.pipeline import DabFusionPipeline
from dabfusion.testing.random_bundle import make_random_bundle

torch.set_num_threads(1)
SR = 22050


def beat_music(seconds: float = 3.0, bpm: float = 120.0, sr: int = SR) -> np.ndarray:
    """Clicks on a steady beat over a quiet tone: something a beat tracker locks onto."""
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.05 * np.sin(2 * np.pi * 220 * t)
    for b in np.arange(0.25, seconds, 60.0 / bpm):
        i = int(b * sr)
        n = min(len(t) - i, int(0.05 * sr))
        wave[i:i + n] += 0.8 * np.exp(-np.arange(n) / (0.01 * sr)) * np.sin(2 * np.pi * 1000 * t[:n])
    return wave.astype(np.float32)[None]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_random_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


@pytest.fixture(scope="module")
def bundle(tiny):
    return DabFusionPipeline.from_folder(tiny)


def test_bundle_loads_its_parts_and_reads_its_settings(bundle, tiny):
    assert (bundle.image_size, bundle.window, bundle.fps) == (32, 8, 30.0)
    assert bundle.name == "random-tiny-beats" and bundle.files.root == tiny and bundle.window == 8
    assert [b["name"] for b in bundle.music.spec["branches"]] == ["beats"]
    assert "32x32" in bundle.describe()


def test_a_swapped_music_adapter_or_flow_ae_is_refused(tmp_path):
    good = make_random_bundle(tmp_path / "mel", music="mel+adapter")
    assert set(find_bundle_files(good).adapters) == {"mel"}
    assert [b["name"] for b in DabFusionPipeline.from_folder(good).music.spec["branches"]] == ["mel", "beats"]
    other = make_random_bundle(tmp_path / "other", music="mel+adapter", seed=1)
    bad = tmp_path / "swapped_adapter"
    shutil.copytree(good, bad)
    shutil.copyfile(other / "mel_adapter.safetensors", bad / "mel_adapter.safetensors")
    with pytest.raises(ConfigMismatchError, match="adapter"):
        DabFusionPipeline.from_folder(bad)
    bad_ae = tmp_path / "swapped_ae"
    shutil.copytree(good, bad_ae)
    shutil.copyfile(other / "flow_ae.safetensors", bad_ae / "flow_ae.safetensors")
    with pytest.raises(ConfigMismatchError, match="flow AE"):
        DabFusionPipeline.from_folder(bad_ae)
    no_adapter = tmp_path / "no_adapter"
    shutil.copytree(good, no_adapter)
    (no_adapter / "mel_adapter.safetensors").unlink()
    (no_adapter / "bundle.json").unlink()
    with pytest.raises(ModelFileError, match="mel adapter"):
        DabFusionPipeline.from_folder(no_adapter)


def test_missing_parts_name_the_file_and_folder(tmp_path, tiny):
    half = tmp_path / "half"
    half.mkdir()
    shutil.copyfile(tiny / "flow_ae.safetensors", half / "flow_ae.safetensors")
    with pytest.raises(ModelFileError) as err:
        DabFusionPipeline.from_folder(half)
    assert "diffusion.safetensors" in str(err.value) and str(half) in str(err.value)
    with pytest.raises(ModelFileError, match="not found"):
        DabFusionPipeline.from_folder(tmp_path / "nowhere")


def test_cached_bundle_is_reused_until_a_file_changes(tmp_path):
    root = make_random_bundle(tmp_path / "c")
    a, b = DabFusionPipeline.from_folder(root, cached=True), DabFusionPipeline.from_folder(root, cached=True)
    assert a is b
    manifest = root / "bundle.json"
    manifest.write_text(manifest.read_text().replace("random-tiny-beats", "renamed"))
    c = DabFusionPipeline.from_folder(root, cached=True)
    assert c is not a and c.name == "renamed"


def test_any_length_in_windows_and_seeds_decide_the_dance(bundle):
    image = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    wave = beat_music()
    calls = []
    g1 = bundle(image, wave, SR, frames=13, steps=2, seed=3, progress=lambda d, n: calls.append((d, n)))
    g2 = bundle(image, wave, SR, frames=13, steps=2, seed=3)
    g3 = bundle(image, wave, SR, frames=13, steps=2, seed=4)
    assert g1.frames.shape == (13, 32, 32, 3) and g1.frames.dtype == np.uint8
    assert g1.flows.starts == [0, 6] and g1.flows.flow.shape == (13, 2, 8, 8)
    assert np.array_equal(g1.frames, g2.frames)
    assert not np.array_equal(g1.frames, g3.frames)
    assert calls[-1][0] == calls[-1][1] and [d for d, _ in calls] == sorted(d for d, _ in calls)
    long = bundle(image, wave, SR, seconds=1.0, steps=1)
    assert long.frames.shape[0] == 30 and long.flows.starts == [0, 6, 12, 18, 24]
    # every frame, the last window's too, is the *original* reference warped (no chained references)
    from dabfusion.flow_ae import frames_to_uint8

    ref = bundle.encode_reference(long.reference)
    last = slice(long.flows.starts[-1], 30)
    with torch.no_grad():
        redrawn = frames_to_uint8(bundle.flow_ae.decode(bundle.flow_ae.warp(
            ref.z0, long.flows.flow[last], long.flows.occlusion[last])))
    assert np.abs(redrawn.astype(int) - long.frames[last].astype(int)).max() <= 1


def test_the_music_reaches_the_motion_through_the_pipeline(bundle):
    """Same seed: another track gives other flows, the same track the same flows (bit for bit)."""
    ref = bundle.encode_reference((np.random.default_rng(5).random((32, 32, 3)) * 255).astype(np.uint8))
    a = bundle.encode_music(beat_music(bpm=120.0), SR)
    b = bundle.encode_music(beat_music(bpm=90.0), SR)

    def flows(music):
        return bundle.sample_flows(ref, music, n_frames=12, steps=2, seed=7).flow

    fa, fa2, fb = flows(a), flows(bundle.encode_music(beat_music(bpm=120.0), SR)), flows(b)
    assert torch.equal(fa, fa2)
    assert (fa - fb).abs().max() > 1e-4


def test_settings_take_the_callers_then_the_models_then_the_defaults(bundle):
    assert bundle.defaults == {} and bundle.settings() == P.SAMPLING_DEFAULTS
    recommended = DabFusionPipeline.from_parts(bundle.flow_ae, bundle.diffusion, bundle.music,
                                               defaults={"sampler": "ddim", "steps": 7, "guidance": 1.5})
    assert recommended.settings() == P.SamplingSettings("ddim", 7, 1.5)
    assert recommended.settings(sampler="ddpm").n_steps == 1000  # the model's steps were for its sampler
    no_sampler = DabFusionPipeline.from_parts(bundle.flow_ae, bundle.diffusion, bundle.music, defaults={"steps": 7})
    assert no_sampler.settings().n_steps == 7 and no_sampler.settings(sampler="ddpm").n_steps == 1000
    assert P.SamplingSettings("dpmpp").sampler == "dpm++"  # accepted spellings become the canonical name
    with pytest.raises(DabFusionError, match="built from parts"):
        recommended.with_diffusion(bundle.files.diffusion)
    s = bundle.settings(sampler="ddim", guidance=2.0, overlap=3)
    assert (s.sampler, s.guidance, s.overlap, s.n_steps) == ("ddim", 2.0, 3, 50)
    with pytest.raises(DabFusionError, match="overlap must be between 0 and 7"):
        bundle.settings(overlap=8)
    with pytest.raises(DabFusionError, match="guidance"):
        bundle.settings(guidance=-1.0)


def test_reference_preparation(bundle):
    wide = np.zeros((60, 100, 3), np.uint8)
    frame, mask = P.prepare_reference(wide, 32)
    assert frame.shape == (32, 32, 3) and mask is None
    rgba = np.zeros((80, 60, 4), np.uint8)
    rgba[20:70, 25:35] = (200, 30, 30, 255)  # an opaque "person" on transparency
    frame, mask = P.prepare_reference(rgba, 32)
    assert frame.shape == (32, 32, 3) and mask is not None and 0.5 < mask.max() <= 1.0
    assert frame[16, 16, 0] > frame[16, 16, 2]  # the red person stands in the middle of the studio
    with pytest.raises(MediaError, match="at least"):
        P.prepare_reference(np.zeros((8, 8, 3), np.uint8), 32)
    with pytest.raises(MediaError, match="one image"):
        bundle.encode_reference(np.zeros((2, 32, 32, 3), np.uint8))


def test_bad_inputs_get_clear_errors(bundle):
    with pytest.raises(MediaError, match="silent"):
        bundle.encode_music(np.zeros((1, SR), np.float32), SR)
    with pytest.raises(DabFusionError, match="zero frames"):
        P.resolve_length(fps=30, frames=0)
    with pytest.raises(DabFusionError, match="less than one frame"):
        P.resolve_length(fps=30, seconds=0.01)
    with pytest.raises(DabFusionError, match="Unknown sampler"):
        P.check_sampler("euler")
    assert P.check_sampler("dpmpp") == "dpm++"


def test_generate_video_writes_an_mp4_with_the_music(bundle, tmp_path):
    from PIL import Image

    Image.fromarray((np.random.default_rng(1).random((48, 48, 3)) * 255).astype(np.uint8)).save(tmp_path / "p.png")
    import soundfile as sf

    sf.write(str(tmp_path / "m.wav"), beat_music(4.0)[0], SR)
    out = P.generate_video(tmp_path / "p.png", tmp_path / "m.wav", tmp_path / "o.mp4", pipeline=bundle, frames=9,
                           steps=1, start=0.5)
    with av.open(str(out)) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        assert c.streams.video[0].frames == 9
        assert "dabfusion" in c.metadata
    with pytest.raises(TypeError, match="pipeline="):  # the old keyword, refused before any work
        P.generate_video(tmp_path / "p.png", tmp_path / "m.wav", tmp_path / "o2.mp4", bundle=bundle, frames=2)
    with pytest.raises(MediaError, match=r"\.mp4"):
        P.generate_video(tmp_path / "p.png", tmp_path / "m.wav", tmp_path / "o.gif", pipeline=bundle, frames=2)


def test_best_of_n_keeps_the_seed_that_follows_the_beat_best_and_each_seed_reproduces(bundle):
    ref = bundle.encode_reference((np.random.default_rng(2).random((32, 32, 3)) * 255).astype(np.uint8))
    music = bundle.encode_music(beat_music(seconds=3.0), SR)
    calls = []
    best, drawn = bundle.sample_best_of(ref, music, n_frames=60, candidates=3, steps=1, seed=10,
                                        progress=lambda d, n: calls.append((d, n)))
    assert sorted(c.seed for c in drawn) == [10, 11, 12]
    scores = [c.mm_align for c in drawn]
    assert scores == sorted(scores, reverse=True) and best is drawn[0].flows
    alone = bundle.sample_flows(ref, music, n_frames=60, steps=1, seed=drawn[0].seed)
    assert torch.equal(alone.flow, best.flow)  # the reported seed gives the same dance on its own
    assert calls[-1][0] == calls[-1][1] and len({n for _, n in calls}) == 1
    assert P.describe_candidates(drawn).splitlines()[0].startswith(f"best seed {drawn[0].seed}: 2D-MM Align")
    with pytest.raises(DabFusionError, match="candidates"):
        bundle.sample_best_of(ref, music, n_frames=8, candidates=0)
    assert all(c.flows is None for c in drawn[1:])  # only the kept clip's flows stay in memory
    with pytest.raises(TypeError, match="not both"):
        bundle.sample_best_of(ref, music, n_frames=8, candidates=2, settings=bundle.settings(), seed=3)
