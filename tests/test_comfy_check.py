"""scripts/comfy_check.py's checks of a template's previews, on /history entries shaped as ComfyUI 0.3.64
writes them (Preview Image: ``{"images": [{"filename", "subfolder", "type"}]}``, Preview Any:
``{"text": [value]}``), without a server. The real run is ``python scripts/comfy_check.py PATH``."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from pack_loader import load_pack

ROOT = Path(__file__).resolve().parents[1]
BEST_OF = "Dance Any Beat - beat check"


@pytest.fixture(scope="module")
def cc():
    spec = importlib.util.spec_from_file_location("comfy_check", ROOT / "scripts" / "comfy_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["comfy_check"] = module
    spec.loader.exec_module(module)
    return module


def api_graph() -> dict:
    return json.loads((ROOT / "workflows" / "api" / f"{BEST_OF}.json").read_text(encoding="utf-8"))


def history(api: dict, base: Path, scores: str, report: str, plot_size=(768, 288)) -> dict:
    (base / "temp").mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", plot_size, (255, 255, 255))
    img.paste((30, 70, 170), (10, 10, 60, 40))
    img.save(base / "temp" / "ComfyUI_temp_abcde_00001_.png")
    outputs = {}
    for nid, node in api.items():
        if node["class_type"] == "PreviewImage":
            outputs[nid] = {"images": [{"filename": "ComfyUI_temp_abcde_00001_.png", "subfolder": "", "type": "temp"}]}
        elif node["class_type"] == "PreviewAny":
            src = api[node["inputs"]["source"][0]]["class_type"]
            outputs[nid] = {"text": [scores if src == "DabFusionSampler" else report]}
    return {"outputs": outputs}


SCORES = ("best seed 2: 2D-MM Align 0.616\n     seed 0: 2D-MM Align 0.593\n     seed 3: 2D-MM Align 0.560\n"
          "     seed 1: 2D-MM Align 0.540\nsampling: dpm++ (model default), 25 steps (model default), guidance 1.5 "
          "(model default), seed 0; 60 frames at 30 fps (2.00 s)")
REPORT = ("2D-MM Align 0.616  (sigma 3 frames; 5 kinematic beats vs 5 music beats)\n"
          "AV-Align    0.100  (1 hits; 6 audio onsets, 4 motion peaks)\n"
          "tempo 127.6 BPM; clip 60 frames at 30 fps = 2.00 s, audio 2.00 s")


def test_the_template_shows_scores_report_and_plot(cc, tmp_path):
    api = api_graph()
    assert cc.check_previews(history(api, tmp_path, SCORES, REPORT), api, tmp_path) == 3


@pytest.mark.parametrize("scores", [
    "\n".join(SCORES.splitlines()[:3] + SCORES.splitlines()[4:]),  # a candidate missing
    SCORES.replace("seed 3", "seed 7"),  # not the seeds seed .. seed + 3
    SCORES.replace("best seed", "     seed"),  # no best first
    SCORES.rsplit("\n", 1)[0],  # no settings line
    "",
])
def test_wrong_scores_fail(cc, tmp_path, scores):
    api = api_graph()
    with pytest.raises(cc.CheckFailed):
        cc.check_previews(history(api, tmp_path, scores, REPORT), api, tmp_path)


def test_a_missing_plot_or_report_fails(cc, tmp_path):
    api = api_graph()
    entry = history(api, tmp_path, SCORES, REPORT)
    (tmp_path / "temp" / "ComfyUI_temp_abcde_00001_.png").unlink()
    with pytest.raises(cc.CheckFailed, match="was not saved"):
        cc.check_previews(entry, api, tmp_path)
    with pytest.raises(cc.CheckFailed, match="not a beat report"):
        cc.check_previews(history(api, tmp_path, SCORES, "hello"), api, tmp_path)


def test_a_beat_alignment_graph_gets_enough_music_for_beats(cc):
    api, _ = cc.make_prompt(BEST_OF, "random_tiny", steps=2, seconds=1.0, save_video=False)
    music = next(n for n in api.values() if n["class_type"] == "DabFusionLoadMusic")
    assert music["inputs"]["duration"] == cc.BEAT_SECONDS
    sampler = next(n for n in api.values() if n["class_type"] == "DabFusionSampler")
    assert sampler["inputs"]["candidates"] == 4 and sampler["inputs"]["steps"] == 2
    other, _ = cc.make_prompt("Dance Any Beat - image and music", "random_tiny", steps=2, seconds=1.0,
                              save_video=False)
    assert next(n for n in other.values() if n["class_type"] == "DabFusionLoadMusic")["inputs"]["duration"] == 1.0


def test_the_pack_nodes_it_requires_are_the_packs(cc):
    assert set(cc.NODES) == set(load_pack("dab_pack_comfy_check").NODE_CLASS_MAPPINGS)


# ----------------------------------------------------------------------------- --frontend (no network)

PIP_INDEX = """comfyui-frontend-package (1.58.1)
Available versions: 1.58.1, 1.57.5, 1.9.10, 1.27.10, 1.24.0.post1, 1.24.0
"""


def test_latest_is_the_newest_release_pip_lists(cc, tmp_path):
    asked = []

    def index(python):
        asked.append(python)
        return "WARNING: Location 'file:///opt/pypi/simple/x/' is ignored\n" + PIP_INDEX

    assert cc.parse_pip_index_versions(PIP_INDEX)[:3] == ["1.58.1", "1.57.5", "1.9.10"]
    assert cc.resolve_frontend_version("latest", tmp_path, "py", index=index) == "1.58.1"
    assert asked == ["py"]
    # numeric order, not string order; post-releases passed over
    assert cc.newest_release(["1.9.10", "1.10.0", "1.24.0.post1"]) == "1.10.0"
    with pytest.raises(cc.CheckFailed):
        cc.resolve_frontend_version("latest", tmp_path, "py", index=lambda python: "no versions here")


def test_required_is_comfyuis_pin_and_a_version_is_taken_as_given(cc, tmp_path):
    def no_index(python):
        raise AssertionError("asked the package index")

    (tmp_path / "requirements.txt").write_text("comfyui-frontend-package==1.27.10\n"
                                               "comfyui-workflow-templates==0.1.95\ntorch\n")
    assert cc.required_frontend_version(tmp_path) == "1.27.10"
    assert cc.resolve_frontend_version("required", tmp_path, "py", index=no_index) == "1.27.10"
    assert cc.resolve_frontend_version("1.30.2", tmp_path, "py", index=no_index) == "1.30.2"
    for bad in ("newest", "1.30", "1.30.2; rm -rf /", ">=1.30"):
        with pytest.raises(cc.CheckFailed, match="latest, required or a version"):
            cc.resolve_frontend_version(bad, tmp_path, "py", index=no_index)
    (tmp_path / "requirements.txt").write_text("torch\n")
    with pytest.raises(cc.CheckFailed, match="pins no"):
        cc.resolve_frontend_version("required", tmp_path, "py", index=no_index)


def test_the_real_comfyuis_pin_is_read(cc):
    comfy = ROOT.parent / "shared" / "comfyui"
    if not (comfy / "requirements.txt").is_file():
        pytest.skip(f"no ComfyUI checkout at {comfy}")
    assert re.fullmatch(r"\d+\.\d+\.\d+", cc.required_frontend_version(comfy))


def test_an_installed_front_end_is_reused_and_the_served_version_is_read_from_the_log(cc, tmp_path):
    static = tmp_path / "1.58.1" / "comfyui_frontend_package" / "static"
    static.mkdir(parents=True)
    (static / "index.html").write_text("<html></html>")
    # installed already: no pip (a python that does not exist would fail)
    assert cc.install_frontend("1.58.1", "/nonexistent/python", cache=tmp_path) == tmp_path / "1.58.1"
    with pytest.raises(cc.CheckFailed, match="could not install"):
        cc.install_frontend("0.0.0", sys.executable + "-missing", cache=tmp_path / "empty")
    log = "Total VRAM 1 MB\nComfyUI frontend version: 1.58.1\n[Prompt Server] web root: /x/static\n"
    assert cc.served_frontend_version(log) == "1.58.1"
    assert cc.served_frontend_version("no front-end line") is None


def test_the_frontend_option_is_parsed(cc, tmp_path, monkeypatch):
    seen = {}

    def stop(spec, comfy, python, index=None):
        seen["spec"], seen["python"] = spec, python
        raise cc.CheckFailed("stop here")

    monkeypatch.setattr(cc, "resolve_frontend_version", stop)
    monkeypatch.setattr(cc, "prepare_base", lambda base, checkpoint, copy: "random_tiny")
    (tmp_path / "main.py").write_text("")
    assert cc.main([str(tmp_path), "--frontend", "latest", "--python", "py"]) == 1
    assert seen == {"spec": "latest", "python": "py"}


def test_the_prompt_is_compared_on_the_inputs_a_node_declares(cc):
    # front-end 1.27 sends Preview Any's read-only "preview" box (empty), 1.58 does not: ComfyUI drops it
    info = {"PreviewAny": {"input": {"required": {"source": [["*"], {}]}}},
            "DabFusionSampler": {"input": {"required": {"steps": ["INT", {}]}, "optional": {"seed": ["INT", {}]}}}}
    old = {"11": {"class_type": "PreviewAny", "inputs": {"source": ["6", 1], "preview": ""}},
           "6": {"class_type": "DabFusionSampler", "inputs": {"steps": 2, "seed": 0}}}
    new = {"11": {"class_type": "PreviewAny", "inputs": {"source": ["6", 1]}},
           "6": {"class_type": "DabFusionSampler", "inputs": {"steps": 2, "seed": 0}}}
    assert cc.declared_inputs(info, old) == cc.declared_inputs(info, new)
    new["6"]["inputs"]["seed"] = 1  # a declared input still counts
    assert cc.declared_inputs(info, old) != cc.declared_inputs(info, new)
