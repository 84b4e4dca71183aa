"""The shipped API workflows run in a real ComfyUI: its own prompt validation (``execution.validate_prompt``)
and executor (``execution.PromptExecutor``), the pack loaded by its own ``load_custom_node``, on a tiny
random-weight model (steps and lengths lowered). Bad input in the graph ends in ComfyUI's node error (the
red node) with the pack's one-line message, not a traceback. Runs in a fresh Python
(tests/comfyui_executor.py) so ComfyUI's top-level modules never enter this one; needs a ComfyUI
(../shared/comfyui or DABFUSION_COMFYUI, see tests/real_comfyui.py), else it skips and says why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from real_comfyui import COMFYUI, comfyui  # noqa: F401 - the fixture: skips without a ComfyUI

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "workflows" / "api"
NAMES = sorted(p.stem for p in API.glob("*.json"))
TINY = "tiny_random"


def lowered(api: dict) -> dict:
    """The template on the tiny model, 2 steps, 2 s of music (Beat Alignment needs beats), 3 s long clips."""
    api = json.loads(json.dumps(api))
    for node in api.values():
        inputs = node["inputs"]
        if node["class_type"] == "DabFusionModelLoader":
            inputs.update(checkpoint=TINY, device="cpu")
        if node["class_type"] == "DabFusionSampler":
            inputs["steps"] = 2
            if inputs.get("length"):
                inputs["length"] = 3.0
        if node["class_type"] == "DabFusionLoadMusic" and inputs.get("duration"):
            inputs["duration"] = 2.0
    return api


@pytest.fixture(scope="module")
def ran(comfyui, tmp_path_factory):  # noqa: F811 - the fixture imported above
    from dabfusion.testing.random_bundle import make_random_bundle

    # the checkout is there, but its executor needs ComfyUI's own requirements (make test installs them)
    probe_code = ("import sys; sys.path.insert(0, sys.argv[1]); from comfy.cli_args import args; "
                  "args.cpu = True; import execution, nodes")
    probe = subprocess.run([sys.executable, "-c", probe_code, COMFYUI], capture_output=True, text=True,
                           timeout=300, cwd=COMFYUI)
    if probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr:
        missing = probe.stderr.strip().splitlines()[-1]
        pytest.skip(f"ComfyUI's requirements are not installed in this Python ({missing}); `make test` "
                    "installs them, or pip install -r <ComfyUI>/requirements.txt")
    work = tmp_path_factory.mktemp("comfyui_run")
    make_random_bundle(work / "models" / "dabfusion" / TINY)
    prompts = {name: lowered(json.loads((API / f"{name}.json").read_text(encoding="utf-8"))) for name in NAMES}
    base = lowered(json.loads((API / "Dance Any Beat - image and music.json").read_text(encoding="utf-8")))
    bad_beats = json.loads(json.dumps(base))
    (work / "input").mkdir(exist_ok=True)
    (work / "input" / "beats.txt").write_text("0.5\n0.4\n", encoding="utf-8")  # not increasing
    for node in bad_beats.values():
        if node["class_type"] == "DabFusionLoadMusic":
            node["inputs"]["beats"] = "beats.txt"
    bad_model = json.loads(json.dumps(base))
    for node in bad_model.values():
        if node["class_type"] == "DabFusionModelLoader":
            node["inputs"]["checkpoint"] = "no such model"
    prompts.update({"bad beat file": bad_beats, "bad model folder": bad_model})
    request = work / "request.json"
    request.write_text(json.dumps({"prompts": prompts}), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "comfyui_executor.py"), COMFYUI, str(ROOT),
                           str(work), str(request)], capture_output=True, text=True, timeout=900, cwd=work)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(lines[-1][len("RESULT "):]), work


@pytest.mark.parametrize("name", NAMES)
def test_the_template_validates_and_runs_in_comfyuis_executor(ran, name):
    report, work = ran
    entry = report[name]
    assert entry["valid"], (entry["error"], entry["node_errors"])
    assert entry["success"] and not entry["errors"], entry["errors"]
    api = json.loads((API / f"{name}.json").read_text(encoding="utf-8"))
    combine = next(nid for nid, n in api.items() if n["class_type"] == "DabFusionVideoCombine")
    saved = entry["outputs"][combine]["images"][0]
    assert (work / "output" / saved["subfolder"] / saved["filename"]).is_file()
    for nid, node in api.items():  # every Preview Any shows text, every Preview Image an image
        if node["class_type"] in ("PreviewAny", "PreviewImage"):
            assert entry["outputs"].get(nid), (name, node["class_type"], nid)
    sampler = next(nid for nid, n in api.items() if n["class_type"] == "DabFusionSampler")
    shown = {api[nid]["inputs"]["source"][0]: entry["outputs"][nid]["text"][0]
             for nid, n in api.items() if n["class_type"] == "PreviewAny"}
    if sampler in shown:  # the tiny model recommends none: the library defaults, not marked as the model's
        assert "sampling: dpm++, 2 steps, guidance 1, seed" in shown[sampler], shown[sampler]


def test_a_bad_beat_file_is_a_node_error_with_one_clear_line(ran):
    entry = ran[0]["bad beat file"]
    if entry["valid"]:
        assert not entry["success"] and len(entry["errors"]) == 1
        error = entry["errors"][0]
        assert error["node_type"] == "DabFusionLoadMusic"
        message = error["exception_message"]
    else:
        message = json.dumps(entry["node_errors"])
    assert "beats.txt" in message and "line 2" in message and "Traceback" not in message


def test_a_model_folder_that_is_not_there_is_a_validation_error(ran):
    entry = ran[0]["bad model folder"]
    assert not entry["valid"]
    errors = [e for node in entry["node_errors"].values() for e in node["errors"]]
    assert errors and any("no such model" in (e.get("details", "") + e.get("message", "")) for e in errors), errors
