"""The one place where the node classes reach ComfyUI.

Inside ComfyUI it uses folder_paths, comfy.utils.ProgressBar, comfy.model_management,
comfy.cli_args and comfy_api's video types. Outside ComfyUI (plain pytest, scripts) it falls back
to local folders (``DABFUSION_MODELS_DIR``, ``DABFUSION_INPUT_DIR``, ``DABFUSION_OUTPUT_DIR``),
a quiet progress counter, the CPU/CUDA device and :class:`VideoFile` (a small stand-in for core
VIDEO), so the node classes stay testable without a ComfyUI checkout.
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
        self.update_absolute(self.done + n)

    def update_absolute(self, done: int, total: int | None = None) -> None:
        """Set the position (``progress(done, total)`` callbacks of the pipeline call this)."""
        if total is not None:
            self.total = int(total)
        self.done = int(done)
        check_interrupted()
        if self._bar is not None:
            self._bar.update_absolute(self.done, self.total)

    def __call__(self, done: int, total: int) -> None:
        self.update_absolute(done, total)


def output_directory() -> Path:
    if folder_paths is not None:
        return Path(folder_paths.get_output_directory())
    return Path(os.environ.get("DABFUSION_OUTPUT_DIR", "out"))


def input_directory() -> Path:
    if folder_paths is not None:
        return Path(folder_paths.get_input_directory())
    return Path(os.environ.get("DABFUSION_INPUT_DIR", "."))


# ------------------------------------------------------------------------------ input files

#: Audio (and audio-in-video) files LoadMusic offers; ComfyUI's own LoadAudio lists the same kinds.
AUDIO_EXTENSIONS = {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff",
                    ".mp4", ".mkv", ".webm", ".mov"}


def input_files(extensions: set[str]) -> list[str]:
    """Files in the input folder (top level, as core loaders list them) with these extensions."""
    folder = input_directory()
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n for n in names if (folder / n).is_file() and Path(n).suffix.lower() in extensions)


def input_path(name: str) -> Path:
    """Path of a file chosen in an input combo (``name [output]`` annotations as in core)."""
    if folder_paths is not None:
        return Path(folder_paths.get_annotated_filepath(name))
    for tag, folder in (("[output]", output_directory()), ("[input]", input_directory())):
        if name.endswith(tag):
            return folder / name[: -len(tag)].rstrip()
    return input_directory() / name


# ------------------------------------------------------------------------------ outputs


def metadata_enabled() -> bool:
    """False when ComfyUI runs with --disable-metadata (then no workflow goes into files)."""
    try:
        from comfy.cli_args import args  # type: ignore[import-not-found]
    except ImportError:
        return True
    return not getattr(args, "disable_metadata", False)


def save_path(filename_prefix: str, extension: str, width: int = 0, height: int = 0) -> tuple[Path, str, str]:
    """(full path, file name, subfolder) of the next numbered output file, ComfyUI-style.

    Inside ComfyUI this is folder_paths.get_save_image_path (``%date%``-style variables, no
    escaping the output folder); outside, the same ``prefix_00001_.ext`` numbering in the output
    folder.
    """
    out_dir = output_directory()
    if folder_paths is not None:
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, str(out_dir), width,
                                                                               height)
        folder = Path(folder)
    else:
        rel = Path(os.path.normpath(filename_prefix))
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"filename_prefix {filename_prefix!r} must stay inside the output folder")
        folder, name = out_dir / rel.parent, rel.name
        subfolder = "" if str(rel.parent) == "." else str(rel.parent)
        folder.mkdir(parents=True, exist_ok=True)
        taken = [p.name for p in folder.glob(f"{name}_*_.*")]
        numbers = [int(n[len(name) + 1:].split("_")[0]) for n in taken if n[len(name) + 1:].split("_")[0].isdigit()]
        counter = max(numbers, default=0) + 1
    folder.mkdir(parents=True, exist_ok=True)
    file = f"{name}_{counter:05}_.{extension.lstrip('.')}"
    return folder / file, file, subfolder


class VideoFile:
    """Outside ComfyUI, the VIDEO output: a saved video file (core's VideoFromFile has the same
    ``get_dimensions`` / ``save_to`` calls that matter to SaveVideo-like consumers)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def get_stream_source(self) -> str:
        return str(self.path)

    def get_dimensions(self) -> tuple[int, int]:
        from dabfusion.media.video import probe_video

        info = probe_video(self.path)
        return info.width, info.height

    def save_to(self, path: str | os.PathLike, **_: object) -> None:
        import shutil

        shutil.copyfile(self.path, path)

    def __repr__(self) -> str:
        return f"VideoFile({str(self.path)!r})"


def video_from_file(path: str | os.PathLike):
    """A core VIDEO object for a saved file (comfy_api's VideoFromFile), or :class:`VideoFile`."""
    for module in ("comfy_api.latest", "comfy_api.input_impl"):
        try:
            mod = __import__(module, fromlist=["*"])
        except ImportError:
            continue
        impl = getattr(mod, "InputImpl", mod)
        cls = getattr(impl, "VideoFromFile", None)
        if cls is not None:
            return cls(str(path))
    return VideoFile(path)
