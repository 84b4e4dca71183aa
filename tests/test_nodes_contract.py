"""Every node declares what it really takes and returns: FUNCTION signatures against INPUT_TYPES, the
returned tuples against RETURN_TYPES (running each node on a random-weight bundle), the ComfyUI
conventions (tooltips, categories, output node UI), model folders, caching, progress and interrupts."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Mapping
from pathlib import Path

import av
import numpy as np
import pytest

from pack_loader import load_pack as load_pack_as
import torch

from dabfusion.pipeline import DabFusionPipeline, FlowLatent, MusicClip, ReferenceLatent
from dabfusion.testing.random_bundle import make_random_bundle

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
PACK = "dab_pack_contract"
WIDGETS = ("INT", "FLOAT", "STRING", "BOOLEAN")


def load_pack():
    return load_pack_as(PACK)


PACK_MODULE = load_pack()
NODES = PACK_MODULE.NODE_CLASS_MAPPINGS


def compat():
    return importlib.import_module(f"{PACK}.nodes.comfy_compat")


def check_type(kind: str, value) -> bool:
    """Does a returned value have the shape ComfyUI expects of this socket type?"""
    if kind == "IMAGE":
        return isinstance(value, torch.Tensor) and value.dim() == 4 and value.shape[-1] == 3 and value.dtype == torch.float32
    if kind == "MASK":
        return isinstance(value, torch.Tensor) and value.dim() == 3 and value.dtype == torch.float32
    if kind == "AUDIO":
        return isinstance(value, Mapping) and value["waveform"].dim() == 3 and isinstance(value["sample_rate"], int)
    if kind == "FLOAT":
        return isinstance(value, float)
    if kind == "STRING":
        return isinstance(value, str)
    if kind == "VIDEO":
        return hasattr(value, "get_dimensions") and hasattr(value, "save_to")
    return isinstance(value, {"DABFUSION_MODEL": DabFusionPipeline, "MUSIC_EMBEDDING": MusicClip,
                              "DABFUSION_LATENT": ReferenceLatent, "FLOW_LATENT": FlowLatent}[kind])


# ------------------------------------------------------------------------------ declarations


@pytest.mark.parametrize("key", sorted(NODES))
def test_declared_inputs_match_the_function_signature(key):
    cls = NODES[key]
    types = cls.INPUT_TYPES()
    assert set(types) <= {"required", "optional", "hidden"}
    required, optional, hidden = (types.get(k, {}) for k in ("required", "optional", "hidden"))
    params = inspect.signature(getattr(cls, cls.FUNCTION)).parameters
    names = [p for p in params if p != "self"]
    assert set(names) == set(required) | set(optional) | set(hidden), key
    for name in list(optional) + list(hidden):
        assert params[name].default is not inspect.Parameter.empty, f"{key}.{name} needs a default"
    for name in required:  # ComfyUI passes required inputs by name, so none may be keyword-less
        assert params[name].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    for section in (required, optional):
        for name, spec in section.items():
            assert isinstance(spec, tuple) and 1 <= len(spec) <= 2, f"{key}.{name}"
            opts = spec[1] if len(spec) > 1 else {}
            assert opts.get("tooltip"), f"{key}.{name} has no tooltip"
            if isinstance(spec[0], list):
                assert spec[0], f"{key}.{name}: empty combo"
                assert opts.get("default", spec[0][0]) in spec[0]
            elif spec[0] in ("INT", "FLOAT"):
                assert opts["min"] <= opts["default"] <= opts["max"]
    for extra in ("VALIDATE_INPUTS", "IS_CHANGED"):
        if hasattr(cls, extra):
            ps = [p for p, v in inspect.signature(getattr(cls, extra)).parameters.items() if v.kind != v.VAR_KEYWORD]
            assert set(ps) <= set(required) | set(optional), f"{key}.{extra} takes undeclared {ps}"


@pytest.mark.parametrize("key", sorted(NODES))
def test_declared_outputs_and_conventions(key):
    cls = NODES[key]
    assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES) == len(cls.OUTPUT_TOOLTIPS)
    assert cls.CATEGORY.startswith("Dance Any Beat/")
    assert len(cls.DESCRIPTION) > 40
    assert key in PACK_MODULE.NODE_DISPLAY_NAME_MAPPINGS
    assert key.startswith("DabFusion")  # no clash with other packs' node names
    custom = {t for t in cls.RETURN_TYPES if t not in ("IMAGE", "MASK", "AUDIO", "VIDEO", "FLOAT", "STRING")}
    assert custom <= {"DABFUSION_MODEL", "MUSIC_EMBEDDING", "DABFUSION_LATENT", "FLOW_LATENT"}


# ------------------------------------------------------------------------------ running them


RECOMMENDED = {"sampler": "ddim", "steps": 2, "guidance": 3.0}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("comfy")
    models = root / "models"
    bundle = make_random_bundle(models / "dabfusion" / "tiny_random")
    # a model folder that recommends other settings than the built-in defaults (bundle.json "defaults")
    make_random_bundle(models / "dabfusion" / "tiny_recommends", defaults=RECOMMENDED)
    for d in ("input", "output"):
        (root / d).mkdir()
    c = compat()
    c.register_model_folder("dabfusion", {".safetensors"}, [models / "dabfusion"])
    mp = pytest.MonkeyPatch()
    mp.setenv("DABFUSION_INPUT_DIR", str(root / "input"))
    mp.setenv("DABFUSION_OUTPUT_DIR", str(root / "output"))
    yield {"root": root, "bundle": bundle}
    mp.undo()


def run(key, **kwargs):
    cls = NODES[key]
    out = getattr(cls(), cls.FUNCTION)(**kwargs)
    result = out["result"] if isinstance(out, dict) else out
    assert isinstance(result, tuple) and len(result) == len(cls.RETURN_TYPES), key
    for kind, value in zip(cls.RETURN_TYPES, result):
        assert check_type(kind, value), f"{key} returned {type(value).__name__} for {kind}"
    return out, result


def test_every_node_runs_and_returns_its_declared_types(env):
    loader = NODES["DabFusionModelLoader"]
    assert "tiny_random" in loader.INPUT_TYPES()["required"]["checkpoint"][0]
    assert loader.VALIDATE_INPUTS("tiny_random") is True
    _, (model,) = run("DabFusionModelLoader", checkpoint="tiny_random", device="cpu")
    assert run("DabFusionModelLoader", checkpoint="tiny_random", device="cpu")[1][0] is model  # cached
    music = NODES["DabFusionLoadMusic"]
    assert "dance_any_beat_music.ogg" in music.INPUT_TYPES()["required"]["audio_file"][0]
    _, (audio, seconds, grid) = run("DabFusionLoadMusic", audio_file="dance_any_beat_music.ogg", start=1.0, duration=2.0)
    assert grid.shape[0] == 1 and grid.shape[2] == 1024  # the beat grid preview
    assert abs(seconds - 2.0) < 0.01 and audio["waveform"].shape[0] == 1
    _, (again, _, _) = run("DabFusionLoadMusic", audio_file="", start=0.5, duration=1.0, audio=audio)
    assert abs(again["waveform"].shape[-1] / again["sample_rate"] - 1.0) < 0.01
    _, (clip, secs, tempo) = run("DabFusionMusicEncoder", model=model, audio=audio)
    assert abs(secs - 2.0) < 0.01 and tempo > 0
    photo = torch.zeros(1, 90, 60, 4)
    photo[0, 20:80, 25:35] = torch.tensor([0.9, 0.2, 0.2, 1.0])
    person = torch.zeros(1, 90, 60)
    person[0, 20:80, 25:35] = 1.0
    _, (start_frame, mask) = run("DabFusionSegmentPerson", image=photo[..., :3], yolo_model="none", sam_model="none",
                                 background="studio", size=64, person="largest", index=0, height=0.7, fit="crop",
                                 invert_mask=True, mask=1.0 - person)
    assert start_frame.shape == (1, 64, 64, 3) and mask.shape == (1, 64, 64) and mask.max() > 0.5
    _, (latent, reference) = run("DabFusionFlowAEEncode", model=model, image=start_frame, fit="crop")
    assert reference.shape == (1, 32, 32, 3)
    _, (flows, scores) = run("DabFusionSampler", model=model, latent=latent, music=clip, seed=5, steps=2,
                             sampler="ddim", guidance=2.0, length=10, length_unit="frames", fps=0.0, overlap=2)
    assert flows.n_frames == 10 and flows.fps == 30.0 and flows.starts == [0, 6] and "seed 5" in scores
    _, (best, scores) = run("DabFusionSampler", model=model, latent=latent, music=clip, seed=5, steps=1,
                            sampler="ddim", guidance=1.0, length=30, length_unit="frames", fps=0.0, candidates=3)
    lines = scores.splitlines()[:3]  # best of three seeds, each scored against the music; then the settings
    assert lines[0].startswith("best seed ") and best.n_frames == 30
    assert scores.splitlines()[3].startswith("sampling: ddim, 1 steps, guidance 1, seed 5")
    assert sorted(int(line.split("seed ")[1].split(":")[0]) for line in lines) == [5, 6, 7]
    _, (frames, fps) = run("DabFusionWarpDecode", model=model, latent=latent, flows=flows, chunk_size=4)
    assert frames.shape == (10, 32, 32, 3) and fps == 30.0
    out, (video, path) = run("DabFusionVideoCombine", images=frames, fps=fps, filename_prefix="tests/dance", crf=20,
                             audio=audio, prompt={"1": {"class_type": "X"}}, extra_pnginfo={"workflow": {"n": 1}})
    saved = Path(path)
    assert saved.parent == env["root"] / "output" / "tests" and saved.name == "dance_00001_.mp4"
    assert out["ui"] == {"images": [{"filename": saved.name, "subfolder": "tests", "type": "output"}],
                         "animated": (True,)}
    assert video.get_dimensions() == (32, 32)
    with av.open(path) as c:
        assert c.streams.video[0].frames == 10 and len(c.streams.audio) == 1
        assert '"n": 1' in c.metadata.get("workflow", "") and "class_type" in c.metadata.get("prompt", "")
    _, (_, path2) = run("DabFusionVideoCombine", images=frames, fps=fps, filename_prefix="tests/dance", crf=20)
    assert Path(path2).name == "dance_00002_.mp4"


def one_second_clip_and_latent(model) -> tuple:
    """The sampler's inputs through the real nodes: a 1 s 440 Hz tone encoded, a random 32 px image encoded."""
    sr = 22050
    t = np.arange(sr) / sr
    audio = {"waveform": torch.from_numpy((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))[None, None],
             "sample_rate": sr}
    _, (clip, _, _) = run("DabFusionMusicEncoder", model=model, audio=audio)
    _, (latent, _) = run("DabFusionFlowAEEncode", model=model, image=torch.rand(1, 32, 32, 3), fit="pad")
    return clip, latent


def _sampler_defaults() -> dict:
    """What a new FlowDiffusion Sampler sends: its widgets' declared defaults."""
    types = NODES["DabFusionSampler"].INPUT_TYPES()
    return {k: v[1]["default"] for k, v in {**types["required"], **types["optional"]}.items()
            if len(v) > 1 and "default" in v[1]}


def test_the_sampler_defaults_to_the_model_folders_recommended_settings(env):
    """A new node samples with the model folder's sampler, steps and guidance (its bundle.json), says so in
    its report, and an explicit value still wins. Fails if the node ignores the folder's guidance."""
    _, (model,) = run("DabFusionModelLoader", checkpoint="tiny_recommends", device="cpu")
    assert model.defaults == RECOMMENDED
    clip, latent = one_second_clip_and_latent(model)
    widgets = {**_sampler_defaults(), "seed": 3, "length": 8, "length_unit": "frames"}
    assert (widgets["sampler"], widgets["steps"], widgets["guidance"]) == ("model default", 0, -1.0)
    _, (flows, report) = run("DabFusionSampler", model=model, latent=latent, music=clip, **widgets)
    assert "sampling: ddim (model default), 2 steps (model default), guidance 3 (model default), seed 3" in report

    def direct(**kw):
        return model.sample_flows(latent, clip, n_frames=8, settings=model.settings(seed=3, **kw)).flow

    assert torch.equal(flows.flow, direct())  # what the folder recommends ...
    assert not torch.equal(flows.flow, direct(guidance=1.0))  # ... guidance included (1.0 samples otherwise)
    _, (explicit, report) = run("DabFusionSampler", model=model, latent=latent, music=clip,
                                **{**widgets, "guidance": 1.0})
    assert torch.equal(explicit.flow, direct(guidance=1.0))
    assert "sampling: ddim (model default), 2 steps (model default), guidance 1, seed 3" in report
    _, (_, report) = run("DabFusionSampler", model=model, latent=latent, music=clip,
                         **{**widgets, "sampler": "dpm++", "steps": 1})
    assert "sampling: dpm++, 1 steps, guidance 3 (model default)" in report


def test_a_length_past_the_music_is_cut_to_the_music_with_a_note(env):
    _, (model,) = run("DabFusionModelLoader", checkpoint="tiny_random", device="cpu")
    clip, latent = one_second_clip_and_latent(model)
    _, (flows, report) = run("DabFusionSampler", model=model, latent=latent, music=clip, seed=0, steps=1,
                             sampler="dpm++", guidance=1.0, length=3.0, length_unit="seconds", fps=10.0)
    assert flows.n_frames == 10
    assert ("length: 30 frames (3.00 s) were asked for, but the music has only 1.00 s: the video ends with the "
            "music, 10 frames (1.00 s)") in report


def test_sampler_length_modes_and_progress(env, monkeypatch):
    _, (model,) = run("DabFusionModelLoader", checkpoint="tiny_random", device="cpu")
    c = compat()
    seen = []
    orig = c.ProgressBar.update_absolute
    monkeypatch.setattr(c.ProgressBar, "update_absolute",
                        lambda self, done, total=None: (seen.append((done, total)), orig(self, done, total))[1])
    clip, latent = one_second_clip_and_latent(model)
    common = dict(model=model, latent=latent, music=clip, seed=0, steps=1, sampler="dpm++", guidance=1.0)
    assert run("DabFusionSampler", **common, length=0.0, length_unit="seconds", fps=12.0)[1][0].n_frames == 12
    assert run("DabFusionSampler", **common, length=0.5, length_unit="seconds", fps=0.0)[1][0].n_frames == 15
    assert seen and seen[-1][0] == seen[-1][1] == 3  # 15 frames: 3 windows of 8 with overlap 2, 1 step each


def test_interrupts_stop_the_sampler(env, monkeypatch):
    _, (model,) = run("DabFusionModelLoader", checkpoint="tiny_random", device="cpu")
    c = compat()
    _, (latent, _) = run("DabFusionFlowAEEncode", model=model, image=torch.rand(1, 32, 32, 3), fit="crop")
    sr = 22050
    audio = {"waveform": torch.rand(1, 1, sr) - 0.5, "sample_rate": sr}
    _, (clip, _, _) = run("DabFusionMusicEncoder", model=model, audio=audio)

    class Interrupted(Exception):
        pass

    calls = []

    def interrupt():
        calls.append(1)
        if len(calls) >= 2:
            raise Interrupted

    monkeypatch.setattr(c, "check_interrupted", interrupt)
    with pytest.raises(Interrupted):
        NODES["DabFusionSampler"]().sample(model=model, latent=latent, music=clip, seed=0, steps=5, sampler="dpm++",
                                          guidance=1.0, length=20, length_unit="frames", fps=0.0)
    assert len(calls) == 2  # stopped at the second step, not after all 15


def test_model_folders_and_missing_models(env, tmp_path):
    loader = NODES["DabFusionModelLoader"]
    message = loader.VALIDATE_INPUTS("no_such_model")
    assert isinstance(message, str) and "no_such_model" in message and "dabfusion" in message
    lm = importlib.import_module(f"{PACK}.nodes.load_model")
    with pytest.raises(Exception) as err:
        lm.resolve_bundle("no_such_model")
    assert str(env["root"] / "models" / "dabfusion") in str(err.value)
    c = compat()
    assert {"dabfusion", "clap", "wav2clip", "sams", "ultralytics_bbox", "ultralytics_segm"} <= set(c._STANDALONE_FOLDERS)
    seg = importlib.import_module(f"{PACK}.nodes.segment")
    with pytest.raises(Exception, match="sams"):
        seg.sam_path("sam_vit_b_01ec64.pth")
    assert seg.yolo_choices()[0] == "none" and seg.sam_choices()[0] == "none"


def test_compat_fallbacks_outside_comfyui(env, tmp_path):
    c = compat()
    assert not c.IN_COMFYUI
    path, file, sub = c.save_path("a/b/clip", "mp4")
    assert file == "clip_00001_.mp4" and sub == "a/b" and path.parent.is_dir()
    with pytest.raises(ValueError):
        c.save_path("../escape", "mp4")
    assert isinstance(c.video_from_file(path), c.VideoFile)
    (env["root"] / "input" / "song.wav").write_bytes(b"RIFF")
    (env["root"] / "input" / "notes.txt").write_text("x")
    assert c.input_files(c.AUDIO_EXTENSIONS) == ["song.wav"]
    assert c.input_path("song.wav") == env["root"] / "input" / "song.wav"
    assert c.input_path("x.mp4 [output]") == env["root"] / "output" / "x.mp4"
