"""The loader's model on ComfyUI's device, moved by ComfyUI's model management (issue 13).

Two hosts, as in test_nodes_progress: the compat fallback (plain pytest: the model stays where the
loader put it, nothing is registered) and ComfyUI's real ``comfy.model_management`` /
``comfy.model_patcher`` from the checkout named by ``DABFUSION_COMFYUI`` in CPU mode (``--cpu``;
skipped without one). Inside ComfyUI the loader registers each part (flow AE, U-Net, music encoder
networks) as a ModelPatcher held on the offload device; each node loads the parts it needs through
``load_models_gpu`` right before its work; ``free_memory`` / ``unload_all_models`` unload them; the
next node loads them again; and the whole chain produces the same outputs as the pipeline called
directly, before and after an unload, with the loader's cache handing back the same object.
"""

from __future__ import annotations

import gc
import importlib
import weakref

import numpy as np
import pytest
import torch

from pack_loader import load_pack
from real_comfyui import comfyui  # noqa: F401 - the fixture

from dabfusion.pipeline import DabFusionPipeline
from dabfusion.testing.random_bundle import make_random_bundle

torch.set_num_threads(1)
PACK = "dab_pack_device"
NODES = load_pack(PACK).NODE_CLASS_MAPPINGS
COMPAT = importlib.import_module(f"{PACK}.nodes.comfy_compat")
SR = 22050
SAMPLING = dict(seed=3, steps=2, sampler="dpm++", guidance=1.5, length=10, length_unit="frames", fps=0.0)


def run(key, **kwargs):
    cls = NODES[key]
    return getattr(cls(), cls.FUNCTION)(**kwargs)


@pytest.fixture
def fallback(monkeypatch):
    monkeypatch.setattr(COMPAT, "comfy_utils", None)
    monkeypatch.setattr(COMPAT, "model_management", None)


@pytest.fixture
def mm(comfyui, monkeypatch):
    cu, mm = comfyui
    monkeypatch.setattr(COMPAT, "comfy_utils", cu)
    monkeypatch.setattr(COMPAT, "model_management", mm)
    mm.interrupt_current_processing(False)
    mm.unload_all_models()
    yield mm
    mm.unload_all_models()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    # mel+adapter: the music encoder has a torch module (its adapter), so all three parts hold weights
    return make_random_bundle(tmp_path_factory.mktemp("dev") / "tiny", music="mel+adapter", noise=0.2)


def _audio(seconds: float = 2.0, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    wave = 0.05 * rng.standard_normal(n)
    for k in np.arange(0.25, seconds, 0.5):  # clicks at 120 bpm
        a = int(k * SR)
        wave[a: a + 400] += np.hanning(800)[400:] * 0.9
    return {"waveform": torch.from_numpy(wave.astype(np.float32))[None, None], "sample_rate": SR}


IMAGE = torch.rand(1, 40, 48, 3, generator=torch.Generator().manual_seed(1))


def chain(model, candidates: int = 1) -> dict:
    """Music Encoder -> FlowAE Encode -> FlowDiffusion Sampler -> Warp and Decode."""
    music, _, tempo = run("DabFusionMusicEncoder", model=model, audio=_audio())
    latent, reference = run("DabFusionFlowAEEncode", model=model, image=IMAGE, fit="crop")
    flows, scores = run("DabFusionSampler", model=model, latent=latent, music=music, candidates=candidates,
                        **SAMPLING)
    frames, fps = run("DabFusionWarpDecode", model=model, latent=latent, flows=flows, chunk_size=4)
    return dict(tempo=tempo, z0=latent.z0, reference=reference, flow=flows.flow, occlusion=flows.occlusion,
                frames=frames, fps=fps, scores=scores)


@pytest.fixture(scope="module")
def expected(bundle):
    """The same work done by the pipeline itself on the CPU, with no node and no ComfyUI."""
    from dabfusion.media.comfy import audio_from_comfy, image_to_comfy

    pipe = DabFusionPipeline.from_folder(bundle, device="cpu")
    wave, sr = audio_from_comfy(_audio())
    clip = pipe.encode_music(wave, sr)
    frame, _ = pipe.prepare_reference(IMAGE, fit="crop", segment=False)
    ref = pipe.encode_reference(frame, fit="crop")
    settings = pipe.settings(sampler="dpm++", steps=2, guidance=1.5, seed=3)
    flows = pipe.sample_flows(ref, clip, n_frames=10, settings=settings)
    frames = pipe.render(ref, flows, chunk=4)
    return dict(tempo=float(clip.summary.tempo), z0=ref.z0, reference=image_to_comfy(ref.image), flow=flows.flow,
                occlusion=flows.occlusion, frames=image_to_comfy(frames), fps=flows.fps)


def assert_same(got: dict, want: dict) -> None:
    for key, value in want.items():
        if isinstance(value, torch.Tensor):
            assert got[key].device.type == "cpu", f"{key} is on {got[key].device}"
            assert torch.allclose(got[key].float(), value.float(), atol=1e-5, rtol=1e-5), key
        else:
            assert got[key] == pytest.approx(value), key


def load(bundle, device="auto"):
    return run("DabFusionModelLoader", checkpoint=str(bundle), device=device)[0]


def ours_loaded(mm, pipe, only_currently_used=False) -> set[str]:
    """The parts of ``pipe`` that ComfyUI lists among its loaded models."""
    loaded = {id(m) for m in mm.loaded_models(only_currently_used=only_currently_used)}
    return {part for part, p in COMPAT.managed_patchers(pipe).items() if id(p) in loaded}


def spy(monkeypatch, obj, name: str, seen: list, probe) -> None:
    """Record ``probe()`` whenever ``obj.name`` is called (while the node does its work)."""
    original = getattr(obj, name)

    def wrapper(*args, **kwargs):
        seen.append((name, probe()))
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, wrapper)


# ------------------------------------------------------------------------------ the pipeline helpers


def test_pipeline_torch_modules_and_to(bundle):
    pipe = DabFusionPipeline.from_folder(bundle, device="cpu")
    mods = pipe.torch_modules()
    assert list(mods) == list(DabFusionPipeline.PARTS)
    assert mods["flow_ae"] == [pipe.flow_ae.model] and mods["diffusion"] == [pipe.diffusion]
    assert len(mods["music"]) == 1 and isinstance(mods["music"][0], torch.nn.Module)  # the mel adapter
    assert pipe.to("cpu", parts=("flow_ae",)) is pipe and pipe.flow_ae.device == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown part"):
        pipe.to("cpu", parts=("vae",))
    beats_only = DabFusionPipeline.from_folder(make_random_bundle(bundle.parent / "beats"), device="cpu")
    assert beats_only.torch_modules()["music"] == []  # nothing to move for a weight-free encoder


# ------------------------------------------------------------------------------ outside ComfyUI


def test_fallback_nothing_registered_and_same_outputs(fallback, bundle, expected):
    pipe = load(bundle)
    assert pipe is load(bundle)  # the loader's cache, as before
    assert str(pipe.device) == str(COMPAT.torch_device())
    assert not COMPAT.manages_models() and COMPAT.managed_patchers(pipe) == {}
    COMPAT.load_models(pipe)  # a no-op here
    if pipe.device.type == "cpu":
        assert_same(chain(pipe), expected)
    assert load(bundle, "cpu").device.type == "cpu"


# ------------------------------------------------------------------------------ inside ComfyUI


def test_loader_registers_each_part_once_on_the_offload_device(mm, bundle):
    pipe = load(bundle)
    patchers = COMPAT.managed_patchers(pipe)
    assert set(patchers) == {"flow_ae", "diffusion", "music"}
    for part, patcher in patchers.items():
        assert patcher.load_device == mm.get_torch_device()
        assert patcher.offload_device == mm.unet_offload_device()
        assert patcher.model.__class__.__name__.startswith("DabFusion")
        size = sum(t.nelement() * t.element_size() for m in pipe.torch_modules()[part] for t in m.state_dict().values())
        assert patcher.model_size() == size > 0  # its memory, as ComfyUI counts it (module_size)
    assert str(pipe.device) == str(mm.unet_offload_device())
    assert ours_loaded(mm, pipe) == set()  # registered, not loaded: nothing runs yet
    again = load(bundle)
    assert again is pipe and COMPAT.managed_patchers(again) == patchers  # cached object, same patchers


def test_each_node_loads_its_parts_through_model_management(mm, bundle, expected, monkeypatch):
    pipe = load(bundle)
    seen: list = []

    def probe():
        return ours_loaded(mm, pipe, only_currently_used=True), pipe.flow_ae.device

    spy(monkeypatch, pipe.music, "encode", seen, probe)
    spy(monkeypatch, pipe, "encode_reference", seen, probe)
    spy(monkeypatch, pipe, "sample_flows", seen, probe)
    spy(monkeypatch, pipe, "render", seen, probe)
    got = chain(pipe)
    assert_same(got, expected)
    work = dict((name, parts) for name, (parts, _) in seen)
    assert work["encode"] >= {"music"}
    assert work["encode_reference"] >= {"flow_ae"}
    assert work["sample_flows"] >= {"diffusion", "music"}
    assert work["render"] >= {"flow_ae"}
    dev = mm.get_torch_device()
    assert all(flow_ae_device == dev for _, (_, flow_ae_device) in seen)
    assert ours_loaded(mm, pipe) == {"flow_ae", "diffusion", "music"}  # they stay until ComfyUI needs memory


def test_free_memory_unloads_and_the_next_run_loads_again(mm, bundle, expected):
    pipe = load(bundle)
    assert_same(chain(pipe), expected)
    assert ours_loaded(mm, pipe) == {"flow_ae", "diffusion", "music"}
    pipe.flow_ae.device = torch.device("meta")  # stale on purpose: the unload must set it back
    unloaded = mm.free_memory(1e30, mm.get_torch_device())  # another model asks for all the memory
    assert {id(p) for p in COMPAT.managed_patchers(pipe).values()} <= {id(lm.model) for lm in unloaded}
    assert ours_loaded(mm, pipe) == set()
    assert pipe.flow_ae.device == mm.unet_offload_device()  # the wrapper followed its weights
    assert all(p.loaded_size() == 0 for p in COMPAT.managed_patchers(pipe).values())
    assert_same(chain(pipe), expected)  # loaded again by the nodes, same outputs
    assert ours_loaded(mm, pipe) == {"flow_ae", "diffusion", "music"}

    mm.unload_all_models()
    assert ours_loaded(mm, pipe) == set()
    again = load(bundle)  # a new run: the loader's cache gives the same, still registered object
    assert again is pipe
    assert_same(chain(again), expected)


def test_best_of_n_loads_the_flow_ae_for_scoring(mm, bundle, monkeypatch):
    pipe = load(bundle)
    music = run("DabFusionMusicEncoder", model=pipe, audio=_audio())[0]
    latent = run("DabFusionFlowAEEncode", model=pipe, image=IMAGE, fit="crop")[0]
    mm.unload_all_models()
    seen: list = []
    spy(monkeypatch, pipe, "render", seen, lambda: ours_loaded(mm, pipe, only_currently_used=True))
    flows, scores = run("DabFusionSampler", model=pipe, latent=latent, music=music, candidates=2, **SAMPLING)
    assert len([line for line in scores.splitlines() if "seed" in line.split(":")[0]]) == 2 and flows.n_frames == 10
    assert seen and all(parts == {"flow_ae", "diffusion", "music"} for _, parts in seen)


def test_cpu_choice_is_its_own_unregistered_pipeline(mm, bundle, expected):
    auto = load(bundle)
    cpu = load(bundle, "cpu")
    assert cpu is not auto and COMPAT.managed_patchers(cpu) == {}
    assert_same(chain(cpu), expected)
    assert cpu.device.type == "cpu" and ours_loaded(mm, auto) == set()  # the cpu model did not load the other


def test_novram_finishes_loading_plain_modules(comfyui):
    """--novram makes load_models_gpu move none of a plain module's weights (only comfy.ops layers can run
    from the CPU); compat then moves the part wholly and tells ComfyUI it is loaded. Simulated with the
    meta device as the 'GPU'."""
    from comfy.model_patcher import ModelPatcher

    weights = COMPAT._weights_class("diffusion")()
    weights.add_module("0", torch.nn.Linear(4, 3))
    weights.device = torch.device("cpu")
    patcher = ModelPatcher(weights, load_device=torch.device("meta"), offload_device=torch.device("cpu"))
    assert patcher.loaded_size() == 0
    COMPAT._finish_load(patcher)
    assert all(p.device.type == "meta" for p in weights.parameters())
    assert patcher.loaded_size() == patcher.model_size() == (4 * 3 + 3) * 4
    COMPAT._finish_load(patcher)  # already there: nothing to do
    assert patcher.current_loaded_device() == torch.device("meta")


def test_a_dropped_model_leaves_comfyuis_list(mm, bundle):
    """Nothing but the pipeline holds its patchers: once ComfyUI and the loader's cache let it go, its
    weights are freed and ComfyUI's list forgets them (no "memory leak" entry left behind)."""
    from dabfusion.pipeline import clear_pipeline_cache

    pipe = load(bundle)
    run("DabFusionFlowAEEncode", model=pipe, image=IMAGE, fit="crop")
    refs = [weakref.ref(p.model) for p in COMPAT.managed_patchers(pipe).values()]
    n = len(mm.current_loaded_models)
    assert n >= 1 and ours_loaded(mm, pipe) == {"flow_ae"}
    clear_pipeline_cache()
    del pipe
    gc.collect()
    assert all(r() is None for r in refs)
    assert len(mm.current_loaded_models) == n - 1
    assert all(lm.model is not None for lm in mm.current_loaded_models)
