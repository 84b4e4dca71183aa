"""The one place where the node classes reach ComfyUI.

Inside ComfyUI it uses folder_paths, comfy.utils.ProgressBar and comfy.model_management. Outside
ComfyUI (plain pytest, scripts) it falls back to local folders, tqdm and the CPU/CUDA device, so
the node classes stay testable without a ComfyUI checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

from dabfusion.errors import ModelFileError

try:  # ComfyUI's top-level modules exist only when running inside ComfyUI.
    import folder_paths  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the host
    folder_paths = None

try:
    import comfy.model_management as model_management  # type: ignore[import-not-found]
    import comfy.utils as comfy_utils  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the host
    model_management = None
    comfy_utils = None

IN_COMFYUI = folder_paths is not None

#: Used outside ComfyUI: DABFUSION_MODELS_DIR or ./models, with one sub-folder per model kind.
_STANDALONE_MODELS_DIR = Path(os.environ.get("DABFUSION_MODELS_DIR", "models"))
_STANDALONE_FOLDERS: dict[str, tuple[list[Path], set[str]]] = {}


def register_model_folder(name: str, extensions: set[str], extra_paths: list[Path] = ()) -> None:
    """Register a model folder, keeping paths that extra_model_paths.yaml (or other packs) added."""
    extra_paths = [Path(p) for p in extra_paths]
    if folder_paths is not None:
        if name in folder_paths.folder_names_and_paths:
            paths, exts = folder_paths.folder_names_and_paths[name]
            folder_paths.folder_names_and_paths[name] = (list(paths), set(exts) | extensions)
        else:
            default = Path(folder_paths.models_dir) / name
            folder_paths.folder_names_and_paths[name] = ([str(default)], set(extensions))
        for p in extra_paths:
            folder_paths.add_model_folder_path(name, str(p))
        return
    paths, exts = _STANDALONE_FOLDERS.get(name, ([_STANDALONE_MODELS_DIR / name], set()))
    _STANDALONE_FOLDERS[name] = (paths + [p for p in extra_paths if p not in paths], exts | extensions)


def model_folders(name: str) -> list[Path]:
    """The folders searched for models of this kind, in order."""
    if folder_paths is not None:
        return [Path(p) for p in folder_paths.get_folder_paths(name)]
    return list(_STANDALONE_FOLDERS.get(name, ([_STANDALONE_MODELS_DIR / name], set()))[0])


def list_models(name: str) -> list[str]:
    """File names (relative to their folder) of the models of this kind that are present."""
    if folder_paths is not None:
        return sorted(folder_paths.get_filename_list(name))
    exts = _STANDALONE_FOLDERS.get(name, ([], set()))[1]
    found = []
    for folder in model_folders(name):
        if folder.is_dir():
            found += [str(p.relative_to(folder)) for p in folder.rglob("*")
                      if p.is_file() and (not exts or p.suffix.lower() in exts)]
    return sorted(set(found))


def model_path(name: str, filename: str, *, source: str = "") -> Path:
    """Resolve a model file by name in the registered folders, or as a path; a clear error if absent."""
    direct = Path(filename).expanduser()
    if direct.is_absolute() and direct.is_file():
        return direct
    for folder in model_folders(name):
        candidate = folder / filename
        if candidate.is_file():
            return candidate
    folders = ", ".join(str(f) for f in model_folders(name)) or f"models/{name}"
    hint = f" It comes from {source}." if source else ""
    raise ModelFileError(f"Model file '{filename}' was not found. Put it in the '{name}' model folder "
                         f"({folders}) or give its full path.{hint}")


def torch_device():
    """ComfyUI's chosen device inside ComfyUI; otherwise CUDA when present, else CPU."""
    import torch

    if model_management is not None:
        return model_management.get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_interrupted() -> None:
    """Raise ComfyUI's interrupt exception when the user pressed cancel; a no-op outside ComfyUI."""
    if model_management is not None:
        model_management.throw_exception_if_processing_interrupted()


class ProgressBar:
    """ComfyUI's progress bar (which also honours interrupts) or a quiet counter outside ComfyUI."""

    def __init__(self, total: int):
        self.total = int(total)
        self.done = 0
        self._bar = comfy_utils.ProgressBar(self.total) if comfy_utils is not None else None

    def update(self, n: int = 1) -> None:
        self.done += n
        check_interrupted()
        if self._bar is not None:
            self._bar.update(n)


def output_directory() -> Path:
    if folder_paths is not None:
        return Path(folder_paths.get_output_directory())
    return Path(os.environ.get("DABFUSION_OUTPUT_DIR", "out"))


def input_directory() -> Path:
    if folder_paths is not None:
        return Path(folder_paths.get_input_directory())
    return Path(os.environ.get("DABFUSION_INPUT_DIR", "."))
