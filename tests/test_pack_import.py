"""The pack imports the way ComfyUI imports it, without ComfyUI installed."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

from dabfusion.errors import ModelFileError
from pack_loader import load_pack as load_pack_as

ROOT = Path(__file__).resolve().parents[1]


def load_pack(name: str = "dance_any_beat_pack"):
    return load_pack_as(name)


def test_pack_imports_without_comfyui_and_exposes_mappings():
    pack = load_pack()
    assert isinstance(pack.NODE_CLASS_MAPPINGS, dict)
    assert set(pack.NODE_DISPLAY_NAME_MAPPINGS) <= set(pack.NODE_CLASS_MAPPINGS)
    # Our nodes/ package is reached relatively, never as the top-level `nodes` (ComfyUI's nodes.py).
    assert "dance_any_beat_pack.nodes" in sys.modules
    top_nodes = sys.modules.get("nodes")
    assert top_nodes is None or not str(getattr(top_nodes, "__file__", "")).startswith(str(ROOT / "nodes"))


def test_dabfusion_never_imports_comfyui():
    offenders = []
    for path in (ROOT / "dabfusion").rglob("*.py"):
        text = path.read_text()
        for banned in ("import folder_paths", "import comfy", "from comfy", "import nodes", "from nodes"):
            if banned in text:
                offenders.append(f"{path.relative_to(ROOT)}: {banned}")
    assert not offenders, offenders


def test_missing_model_names_the_folder(tmp_path, monkeypatch):
    load_pack("dance_any_beat_pack2")
    compat = importlib.import_module("dance_any_beat_pack2.nodes.comfy_compat")
    compat.register_model_folder("dabfusion_test", {".safetensors"}, [tmp_path])
    with pytest.raises(ModelFileError) as err:
        compat.model_path("dabfusion_test", "nope.safetensors", source="the project's training scripts")
    message = str(err.value)
    assert "nope.safetensors" in message and "dabfusion_test" in message and str(tmp_path) in message
    (tmp_path / "yes.safetensors").write_bytes(b"x")
    assert compat.model_path("dabfusion_test", "yes.safetensors") == tmp_path / "yes.safetensors"
    assert "yes.safetensors" in compat.list_models("dabfusion_test")
