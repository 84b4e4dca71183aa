"""The templates as ComfyUI's template browser shows them and as a fresh ComfyUI runs them.

- Every input file a template names ships with the pack, and the pack puts it into an empty input
  folder the way core Load Image then accepts it (``folder_paths.exists_annotated_filepath``:
  ``os.path.exists(input_dir / name)`` for a plain name; its combo lists the input folder's image
  files), without touching a user's file of the same name.
- Every template has its thumbnail ``workflows/<stem>.jpg`` (front-end 1.27 asks for
  ``/api/workflow_templates/<pack>/<stem>.jpg``, which ComfyUI serves from the workflow's folder) and
  a file name that reads as a title (the browser shows the stem as the card's title).
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pack_loader import load_pack

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
EXAMPLES = ROOT / "dabfusion" / "assets" / "examples"
STEMS = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
PACK = "dab_pack_templates"
#: Suffixes of the files a node input can name in ComfyUI's input folder (images, audio, video).
MEDIA = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".wav", ".flac", ".ogg", ".oga",
         ".opus", ".mp3", ".m4a", ".aac", ".mp4", ".mkv", ".webm", ".mov", ".avi"}


def examples_module():
    load_pack(PACK)
    import importlib

    return importlib.import_module(f"{PACK}.nodes.examples")


def named_files(stem: str) -> set[str]:
    """File names a template's nodes name (API widget values and the UI's widgets_values)."""
    api = json.loads((WORKFLOWS / "api" / f"{stem}.json").read_text(encoding="utf-8"))
    ui = json.loads((WORKFLOWS / f"{stem}.json").read_text(encoding="utf-8"))
    values = [v for node in api.values() for v in node["inputs"].values()]
    values += [v for node in ui["nodes"] for v in node.get("widgets_values") or []]
    return {v for v in values if isinstance(v, str) and Path(v).suffix.lower() in MEDIA}


def core_load_image_accepts(name: str, input_dir: Path) -> bool:
    """Core LoadImage.VALIDATE_INPUTS (ComfyUI 0.3.64 nodes.py) on a plain name, and its combo list."""
    exists = os.path.exists(os.path.join(input_dir, name))
    files = [f for f in os.listdir(input_dir) if os.path.isfile(os.path.join(input_dir, f))]
    listed = [f for f in files if (mimetypes.guess_type(f, strict=False)[0] or "").startswith("image/")]
    return exists and name in listed


def test_there_are_templates():
    assert len(STEMS) >= 4  # image and music, choreograph anyone, long video, beat check, beat grid


@pytest.mark.parametrize("stem", STEMS)
def test_every_input_file_a_template_names_ships_with_the_pack(stem):
    names = named_files(stem)
    assert names, "the templates load an example image and music"
    missing = sorted(n for n in names if not (EXAMPLES / n).is_file())
    assert not missing, f"{stem} names {missing}, which the pack does not ship in {EXAMPLES}"
    shipped = {p.name for p in examples_module().example_files()}
    assert names <= shipped  # and so the pack puts them into input/


@pytest.mark.parametrize("stem", STEMS)
def test_a_fresh_input_folder_gets_what_the_template_needs(stem, tmp_path):
    examples = examples_module()
    input_dir = tmp_path / "input"
    assert not input_dir.exists()
    examples.provide_examples(input_dir)
    api = json.loads((WORKFLOWS / "api" / f"{stem}.json").read_text(encoding="utf-8"))
    images = [n["inputs"]["image"] for n in api.values() if n["class_type"] == "LoadImage"]
    assert images
    for name in images:
        assert core_load_image_accepts(name, input_dir), name
        assert (input_dir / name).read_bytes() == (EXAMPLES / name).read_bytes()
    for name in named_files(stem):
        assert (input_dir / name).is_file(), name


def test_a_users_file_of_the_same_name_is_never_replaced(tmp_path):
    examples = examples_module()
    shipped = [p.name for p in examples.example_files()]
    mine = tmp_path / shipped[0]
    mine.write_bytes(b"the user's own file")
    written = examples.provide_examples(tmp_path)
    assert mine.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in written) == sorted(shipped[1:])
    assert examples.provide_examples(tmp_path) == []  # nothing left to do the second time
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(shipped)


def test_an_unwritable_input_folder_is_a_warning_not_a_failed_import(tmp_path, caplog):
    examples = examples_module()
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the input folder should be")
    with caplog.at_level(logging.WARNING):
        assert examples.provide_examples(blocker / "input") == []
    assert "example files" in caplog.text and str(examples.EXAMPLES_DIR) in caplog.text


def test_inside_comfyui_the_import_fills_the_input_folder_and_outside_it_writes_nothing(tmp_path, monkeypatch):
    examples = examples_module()
    monkeypatch.chdir(tmp_path)  # outside ComfyUI the input folder falls back to the working directory
    monkeypatch.delenv("DABFUSION_INPUT_DIR", raising=False)
    monkeypatch.setattr(examples.compat, "IN_COMFYUI", False)
    assert examples.provide_examples_in_comfyui() == []
    assert list(tmp_path.iterdir()) == []
    comfy_input = tmp_path / "comfy_input"
    monkeypatch.setattr(examples.compat, "IN_COMFYUI", True)
    monkeypatch.setattr(examples.compat, "input_directory", lambda: comfy_input)
    written = examples.provide_examples_in_comfyui()
    assert {p.name for p in written} == {p.name for p in examples.example_files()}
    assert all(p.parent == comfy_input for p in written)


def test_the_pack_calls_it_when_it_loads():
    text = (ROOT / "nodes" / "__init__.py").read_text(encoding="utf-8")
    assert re.search(r"^provide_examples_in_comfyui\(\)", text, re.M)


# ----------------------------------------------------------------------- the template browser


@pytest.mark.parametrize("stem", STEMS)
def test_every_template_has_a_real_thumbnail(stem):
    path = WORKFLOWS / f"{stem}.jpg"  # the front-end asks for <stem>.jpg, nothing else (mediaSubtype 'jpg')
    assert path.is_file(), f"no thumbnail for {stem}: run scripts/make_thumbnails.py"
    with Image.open(path) as img:
        assert img.format == "JPEG"
        assert img.width == img.height >= 256  # shown in a 256 x 256 box
        pixels = np.asarray(img.convert("RGB"), np.float32)
    assert pixels.std() > 20.0  # a picture, not a flat placeholder
    assert path.stat().st_size < 200_000


@pytest.mark.parametrize("stem", STEMS)
def test_the_file_name_reads_as_a_title(stem):
    # The card's title and description are the stem (description with - and _ as spaces), clamped to
    # two lines of a 16rem card in front-end 1.27 and to ONE line of a 264 px card in 1.58 (1600 px
    # window): "Dance Any Beat - choreograph anyone" (35 characters) just fits, the old
    # "... - beat check (best of 4)" (39) was cut (scripts/comfy_check.py --frontend latest measures it).
    # The stem is also a URL path segment, so plain characters only.
    assert stem.startswith("Dance Any Beat - ")
    assert " " in stem and "_" not in stem
    assert len(stem) <= 35
    assert re.fullmatch(r"[A-Za-z0-9 ()\-]+", stem), stem


def test_the_api_copies_are_not_listed_and_have_no_thumbnails():
    # ComfyUI lists <pack>/workflows/*.json only (no recursion): the API files stay out of the browser.
    assert sorted(p.stem for p in (WORKFLOWS / "api").glob("*.json")) == STEMS
    assert not list((WORKFLOWS / "api").glob("*.jpg"))
    assert sorted(p.stem for p in WORKFLOWS.glob("*.jpg")) == STEMS  # no stale thumbnails


def test_the_template_category_has_a_readable_name():
    # The browser names a pack's category after its folder (the registry id when installed from the
    # registry, the repository name when cloned: both the pyproject name), unless the pack's
    # locales/en/main.json gives templateWorkflows.category.<folder> (merged in through /i18n).
    import tomllib

    folder = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    data = json.loads((ROOT / "locales" / "en" / "main.json").read_text(encoding="utf-8"))
    assert data["templateWorkflows"]["category"][folder] == "Dance Any Beat"
