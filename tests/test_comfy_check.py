"""scripts/comfy_check.py's checks of a template's previews, on /history entries shaped as ComfyUI 0.3.64
writes them (Preview Image: ``{"images": [{"filename", "subfolder", "type"}]}``, Preview Any:
``{"text": [value]}``), without a server. The real run is ``python scripts/comfy_check.py PATH``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from pack_loader import load_pack

ROOT = Path(__file__).resolve().parents[1]
BEST_OF = "Dance Any Beat - beat check (best of 4)"


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
