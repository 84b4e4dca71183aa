"""The example workflows: the UI and API versions agree (same nodes, links and widget values), every
widget value is valid for its node's INPUT_TYPES (as ComfyUI validates a prompt), and every API
graph runs end to end through the node classes with a small executor that follows the links, giving
an MP4 with a video and an audio track.

The model is the built-in demo model when it is in the checkout, else a random-weight bundle in the
demo model's place (``DABFUSION_TEST_BUNDLE`` picks another folder). Steps and lengths are lowered
for speed; the graphs are not changed.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path

import av
import pytest

from pack_loader import load_pack as load_pack_as
import torch

from dabfusion.model_bundle import DEMO_MODEL_DIR, is_bundle_dir
from dabfusion.testing.comfy_graph import CORE_STAND_INS, input_specs, is_link
from dabfusion.testing.comfy_graph import execute as run_prompt
from dabfusion.testing.random_bundle import make_random_bundle

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
EXAMPLES = ROOT / "dabfusion" / "assets" / "examples"
PACK = "dab_pack_workflows"
NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
FRONTEND_ONLY = {"Note", "MarkdownNote"}  # UI-only nodes: never in an API prompt
#: Inputs the front-end puts in a prompt that the node does not declare (ComfyUI drops such literal values
#: in get_input_data): Preview Any's read-only "preview" text box.
FRONTEND_INPUTS = {"PreviewAny": {"preview"}}


def load_pack():
    return load_pack_as(PACK)


# ----------------------------------------------------------------------- the pack and core stand-ins


def node_classes() -> dict:
    return {**load_pack().NODE_CLASS_MAPPINGS, **CORE_STAND_INS}


def is_widget(spec: tuple) -> bool:
    return isinstance(spec[0], (list, tuple)) or spec[0] in WIDGET_TYPES


# ----------------------------------------------------------------------- validation (as ComfyUI does)


def validate_prompt(api: dict, classes: dict) -> list[str]:
    """The checks of ComfyUI's validate_inputs that do not need the server."""
    problems = []
    for nid, node in api.items():
        cls = classes.get(node["class_type"])
        if cls is None:
            problems.append(f"{nid}: unknown node type {node['class_type']}")
            continue
        specs = input_specs(cls)
        own = set(inspect.signature(cls.VALIDATE_INPUTS).parameters) if hasattr(cls, "VALIDATE_INPUTS") else set()
        for name in cls.INPUT_TYPES().get("required", {}):
            if name not in node["inputs"]:
                problems.append(f"{nid}: required input {name} missing")
        for name, value in node["inputs"].items():
            if name not in specs:
                if name in FRONTEND_INPUTS.get(node["class_type"], ()) and not is_link(value):
                    continue
                problems.append(f"{nid}: {name} is not an input of {node['class_type']}")
                continue
            spec = specs[name]
            opts = spec[1] if len(spec) > 1 else {}
            if is_link(value):
                src = api[value[0]]
                src_type = classes[src["class_type"]].RETURN_TYPES[value[1]]
                want = "COMBO" if isinstance(spec[0], list) else spec[0]
                if src_type != want and want != "*":  # "*" (Preview Any) takes anything
                    problems.append(f"{nid}.{name}: linked {src_type} into a {want} input")
                continue
            if name in own:
                continue  # the node validates it itself (ComfyUI then skips its own checks)
            if isinstance(spec[0], list):
                if value not in spec[0]:
                    problems.append(f"{nid}.{name}: {value!r} not in {spec[0]}")
            elif spec[0] == "INT":
                if not isinstance(value, int) or isinstance(value, bool) or not opts["min"] <= value <= opts["max"]:
                    problems.append(f"{nid}.{name}: bad INT {value!r}")
            elif spec[0] == "FLOAT":
                if not isinstance(value, (int, float)) or not opts["min"] <= value <= opts["max"]:
                    problems.append(f"{nid}.{name}: bad FLOAT {value!r}")
            elif spec[0] == "STRING" and not isinstance(value, str):
                problems.append(f"{nid}.{name}: bad STRING {value!r}")
            elif spec[0] == "BOOLEAN" and not isinstance(value, bool):
                problems.append(f"{nid}.{name}: bad BOOLEAN {value!r}")
        if own:
            literal = {k: v for k, v in node["inputs"].items() if k in own and not is_link(v)}
            verdict = cls.VALIDATE_INPUTS(**literal)
            if verdict is not True:
                problems.append(f"{nid}: VALIDATE_INPUTS says {verdict}")
    return problems


# ----------------------------------------------------------------------- the executor


def execute(api: dict, classes: dict, overrides: dict | None = None) -> tuple[dict, dict]:
    return run_prompt(api, classes, overrides, extra_pnginfo={"workflow": {"note": "test"}})


# ----------------------------------------------------------------------- tests


def load(name: str) -> tuple[dict, dict]:
    ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
    api = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
    return ui, api


BEST_OF = "Dance Any Beat - beat check"
BEAT_GRID = "Dance Any Beat - beat grid"


def test_there_are_the_four_workflows_and_comfyui_lists_only_the_ui_ones():
    assert {"Dance Any Beat - image and music", "Dance Any Beat - choreograph anyone",
            "Dance Any Beat - long video", BEST_OF, BEAT_GRID} <= set(NAMES)
    # ComfyUI 0.3.64 lists custom_nodes/<pack>/workflows/*.json as templates (one level, no recursion)
    for path in WORKFLOWS.glob("*.json"):
        data = json.loads(path.read_text())
        assert data["version"] == 0.4 and isinstance(data["nodes"], list) and isinstance(data["links"], list)
        assert (WORKFLOWS / "api" / path.name).is_file()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo model if present, else a random-weight bundle put in its place."""
    chosen = os.environ.get("DABFUSION_TEST_BUNDLE")
    if chosen:
        root = Path(chosen)
    elif is_bundle_dir(DEMO_MODEL_DIR):
        root = DEMO_MODEL_DIR
    else:
        root = make_random_bundle(tmp_path_factory.mktemp("demo") / "demo_model")
    load_pack()
    mp = pytest.MonkeyPatch()
    mp.setattr("dabfusion.model_bundle.DEMO_MODEL_DIR", root)
    mp.setattr(f"{PACK}.nodes.load_model.DEMO_MODEL_DIR", root)
    yield root
    mp.undo()


@pytest.mark.parametrize("name", NAMES)
def test_ui_and_api_versions_agree(name):
    ui, api = load(name)
    classes = node_classes()
    ui_nodes = {str(n["id"]): n for n in ui["nodes"] if n["type"] not in FRONTEND_ONLY}
    assert {k: n["type"] for k, n in ui_nodes.items()} == {k: n["class_type"] for k, n in api.items()}
    assert ui["last_node_id"] >= max(n["id"] for n in ui["nodes"])
    assert ui["last_link_id"] >= max(link[0] for link in ui["links"])
    ids = [n["id"] for n in ui["nodes"]]
    assert len(ids) == len(set(ids))
    # links: the same edges, slots consistent on both ends, types those of the producer
    ui_edges = set()
    for lid, src, src_slot, dst, dst_slot, kind in ui["links"]:
        target, source = ui_nodes[str(dst)], ui_nodes[str(src)]
        inp = target["inputs"][dst_slot]
        assert inp["link"] == lid and lid in source["outputs"][src_slot]["links"]
        assert kind == classes[source["type"]].RETURN_TYPES[src_slot] == source["outputs"][src_slot]["type"]
        ui_edges.add((str(src), src_slot, str(dst), inp["name"]))
    api_edges = {(v[0], v[1], nid, k) for nid, n in api.items() for k, v in n["inputs"].items() if is_link(v)}
    assert ui_edges == api_edges
    # widget values: the UI's positional widgets_values are the API's named inputs
    for nid, n in ui_nodes.items():
        cls = classes[n["type"]]
        names = []
        for iname, spec in input_specs(cls).items():
            if is_widget(spec):
                names.append(iname)
                if iname in ("seed", "noise_seed"):
                    names.append(None)  # the front-end's control_after_generate value
                if spec[1].get("image_upload"):
                    names.append(None)  # the upload button's value
        values = n["widgets_values"]
        assert len(values) == len(names), (nid, n["type"], values, names)
        for iname, value in zip(names, values):
            if iname is None:
                continue
            api_value = api[nid]["inputs"][iname]
            if is_link(api_value):
                assert any(i["name"] == iname and i.get("widget") == {"name": iname} for i in n["inputs"])
            else:
                assert api_value == value, (nid, iname)


@pytest.mark.parametrize("name", NAMES)
def test_the_templates_sample_with_the_model_folders_recommendation(name):
    """Steps, sampler and guidance are left to the model (issue 21): no template pins settings that a model
    folder's bundle.json recommends otherwise; both formats."""
    ui, api = load(name)
    for node in api.values():
        if node["class_type"] == "DabFusionSampler":
            inputs = node["inputs"]
            assert (inputs["sampler"], inputs["steps"], inputs["guidance"]) == ("model default", 0, -1.0), name
    samplers = [n for n in ui["nodes"] if n["type"] == "DabFusionSampler"]
    assert samplers and all(n["widgets_values"][2:5] == [0, "model default", -1.0] for n in samplers), name


def test_workflow_files_are_what_the_generator_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_workflows", ROOT / "scripts" / "make_workflows.py")
    gen = importlib.util.module_from_spec(spec)
    sys.modules["make_workflows"] = gen  # dataclasses look their module up
    spec.loader.exec_module(gen)
    written = gen.build(tmp_path)
    assert len(written) == 2 * len(NAMES)
    for path in written:
        ours = WORKFLOWS / path.relative_to(tmp_path)
        assert json.loads(path.read_text()) == json.loads(ours.read_text()), f"run scripts/make_workflows.py ({ours})"


@pytest.mark.parametrize("name", NAMES)
def test_every_widget_value_is_valid_for_its_node(name, demo):
    _, api = load(name)
    assert validate_prompt(api, node_classes()) == []
    for node in api.values():  # the example files the graphs name ship with the pack
        for key in ("image", "audio_file"):
            value = node["inputs"].get(key)
            if isinstance(value, str):
                assert (EXAMPLES / value).is_file(), value


FAST = {"DabFusionSampler": {"steps": 2}, "DabFusionLoadMusic": {"duration": 1.0}}
LONG = {"DabFusionSampler": {"steps": 1, "length": 4.0}}  # several windows of the beat-time demo model
# Beat Alignment needs beats in the clip: the example music's first ones come at 0.89, 1.36, 1.83 s
# (librosa finds none in its first 1.5 s alone)
BEAT = {"DabFusionSampler": {"steps": 2}, "DabFusionLoadMusic": {"duration": 2.0}}
# the beat grid template with its grid moved onto the off-beat (a creator's edit)
GRID = {"DabFusionSampler": {"steps": 2}, "DabFusionLoadMusic": {"duration": 2.0, "beat_offset": 0.5}}


def overrides_for(name: str) -> dict:
    return LONG if "long" in name else BEAT if name == BEST_OF else GRID if name == BEAT_GRID else FAST


@pytest.mark.parametrize("name", NAMES)
def test_api_workflow_runs_end_to_end_to_an_mp4_with_music(name, demo, tmp_path, monkeypatch):
    monkeypatch.setenv("DABFUSION_INPUT_DIR", str(tmp_path / "input"))
    monkeypatch.setenv("DABFUSION_OUTPUT_DIR", str(tmp_path / "output"))
    _, api = load(name)
    classes = node_classes()
    assert validate_prompt(api, classes) == []
    results, uis = execute(api, classes, overrides=overrides_for(name))
    combine = next(nid for nid, n in api.items() if n["class_type"] == "DabFusionVideoCombine")
    video, path = results[combine]
    sampler = next(nid for nid, n in api.items() if n["class_type"] == "DabFusionSampler")
    flows = results[sampler][0]
    assert Path(path).is_file() and Path(path).parent.parent == tmp_path / "output"
    assert uis[combine]["images"][0]["filename"] == Path(path).name
    with av.open(path) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        assert c.streams.video[0].frames == flows.n_frames
        assert "prompt" in c.metadata and "workflow" in c.metadata
    if "long" in name:
        assert len(flows.starts) >= 3  # made in several windows
    if name == BEST_OF:
        check_best_of_and_beat_check(api, results, uis, flows)
    if name == BEAT_GRID:
        check_beat_grid(api, results)


def check_beat_grid(api: dict, results: dict) -> None:
    """Load Music's controls are in the template, its grid picture goes to a Preview Image, and an edit made
    there reaches Music Encoder (and so the sampler) and Video Combine's beat overlay through the AUDIO."""
    from dabfusion.media.comfy import audio_beat_edit
    from dabfusion.music.beat_grid import BeatGridEdit

    by_type: dict[str, list[str]] = {}
    for nid, node in api.items():
        by_type.setdefault(node["class_type"], []).append(nid)
    music = by_type["DabFusionLoadMusic"][0]
    inputs = api[music]["inputs"]
    assert {"beat_offset": 0.0, "tempo": "as tracked", "bpm": 0.0, "beats": ""}.items() <= inputs.items()
    assert [api[p]["inputs"]["images"] for p in by_type["PreviewImage"]] == [[music, 2]]
    assert api[by_type["DabFusionVideoCombine"][0]]["inputs"]["beat_overlay"] is True
    audio, _, grid = results[music]
    assert audio_beat_edit(audio) == BeatGridEdit(offset_beats=0.5)
    assert grid.dim() == 4 and grid.shape[0] == 1 and grid.shape[-1] == 3 and grid.shape[2] == 1024
    clip, _, tempo = results[by_type["DabFusionMusicEncoder"][0]]
    assert clip.beat_edit == BeatGridEdit(offset_beats=0.5) and tempo > 0


def check_best_of_and_beat_check(api: dict, results: dict, uis: dict, flows) -> None:
    """Four seeds scored, best first, shown by Preview Any; Beat Alignment's plot and report shown too."""
    by_type: dict[str, list[str]] = {}
    for nid, node in api.items():
        by_type.setdefault(node["class_type"], []).append(nid)
    sampler = api[by_type["DabFusionSampler"][0]]["inputs"]
    assert sampler["candidates"] == 4
    seed = sampler["seed"]
    scores = results[by_type["DabFusionSampler"][0]][1]
    lines = scores.splitlines()[:4]
    assert lines[0].startswith("best seed ")
    # the settings used: the model's recommendation (the demo model's bundle.json), steps lowered by the test
    assert "dpm++ (model default), 2 steps, guidance 1.5 (model default)" in scores.splitlines()[4]
    assert sorted(int(line.split("seed ")[1].split(":")[0]) for line in lines) == [seed + i for i in range(4)]
    shown = {api[nid]["inputs"]["source"][0]: uis[nid]["text"][0] for nid in by_type["PreviewAny"]}
    assert shown[by_type["DabFusionSampler"][0]] == scores
    beat = by_type["DabFusionBeatAlignment"][0]
    mm_align, av_align, tempo, beat_times, plot, report = results[beat]
    assert 0.0 <= mm_align <= 1.0 and 0.0 <= av_align <= 1.0 and tempo > 0
    assert shown[beat] == report and "2D-MM Align" in report
    assert plot.dim() == 4 and plot.shape[0] == 1 and plot.shape[-1] == 3
    preview = by_type["PreviewImage"][0]
    assert api[preview]["inputs"]["images"] == [beat, 4]
    assert api[beat]["inputs"]["images"][0] == api[by_type["DabFusionVideoCombine"][0]]["inputs"]["images"][0]
    assert flows.n_frames > 0
