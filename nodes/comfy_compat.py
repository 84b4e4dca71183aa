"""The one place where the node classes reach ComfyUI.

Inside ComfyUI it uses folder_paths, comfy.utils.ProgressBar, comfy.model_management (devices,
interrupts, and loading / offloading the loader's model: :func:`manage_model`, :func:`load_models`),
comfy.model_patcher, comfy.cli_args and comfy_api's video types. Outside ComfyUI (plain pytest,
scripts) it falls back to local folders (``DABFUSION_MODELS_DIR``, ``DABFUSION_INPUT_DIR``,
``DABFUSION_OUTPUT_DIR``), a quiet progress counter, the CPU/CUDA device (models stay where they
were loaded) and :class:`VideoFile` (a small stand-in for core VIDEO), so the node classes stay
testable without a ComfyUI checkout.
"""

from __future__ import annotations

import functools
import inspect
import os
import weakref
from pathlib import Path
from typing import Any

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


# ------------------------------------------------------------------------------ models on ComfyUI's device
#
# Inside ComfyUI the loader's model is handed to ComfyUI's model management the way core does it for
# its own models (comfy.model_patcher.ModelPatcher + comfy.model_management.load_models_gpu): the
# weights wait on unet_offload_device() (the CPU unless VRAM is plenty), each node loads the parts it
# needs onto get_torch_device() right before its work (ComfyUI first frees other models' VRAM for
# them), and they stay there until ComfyUI needs the memory for something else (free_memory,
# unload_all_models move them back to the offload device). Each part (flow AE, U-Net, the music
# encoder's networks) is its own ModelPatcher, as core keeps MODEL, CLIP and VAE apart, so ComfyUI can
# offload CLAP while the U-Net samples. Outside ComfyUI none of this runs: the pipeline stays where the
# loader put it.

#: pipeline -> (the model_management module it was registered with, {part: ModelPatcher}).
_MANAGED: "weakref.WeakKeyDictionary[Any, tuple[Any, dict[str, Any]]]" = weakref.WeakKeyDictionary()
_PART_NAMES = {"flow_ae": "DabFusionFlowAE", "diffusion": "DabFusionUNet3D", "music": "DabFusionMusicEncoder"}


def manages_models() -> bool:
    """True inside ComfyUI: the loader's model is then held and moved by ComfyUI's model management."""
    return model_management is not None


def offload_device():
    """Where a managed model waits between nodes: ComfyUI's unet_offload_device() (the CPU unless VRAM is
    plenty); outside ComfyUI, :func:`torch_device` (nothing is offloaded there)."""
    if model_management is not None:
        return model_management.unet_offload_device()
    return torch_device()


def to_intermediate(tensor):
    """A node output tensor on ComfyUI's intermediate_device() (the CPU unless --gpu-only), as core's
    nodes return theirs, so outputs kept in ComfyUI's cache hold no VRAM; unchanged outside ComfyUI."""
    if model_management is None or tensor is None:
        return tensor
    return tensor.to(model_management.intermediate_device())


@functools.lru_cache(maxsize=None)
def _weights_class(part: str) -> type:
    """The torch module a ModelPatcher holds for one part (its name shows in ComfyUI's log)."""
    import torch

    return type(_PART_NAMES[part], (torch.nn.Module,),
                {"__doc__": f"The {part} weights of a DabFusion model, for ComfyUI's model management."})


def _same_device(a, b) -> bool:
    import torch

    a, b = torch.device(a), torch.device(b)
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def manage_model(pipe):
    """Register a pipeline's parts with ComfyUI's model management (once per pipeline object: the
    loader's cache hands the same object to later runs, and it keeps its patchers); returns ``pipe``.
    Outside ComfyUI it returns ``pipe`` untouched."""
    mm = model_management
    if mm is None:
        return pipe
    known = _MANAGED.get(pipe)
    if known is not None and known[0] is mm:
        return pipe
    from comfy.model_patcher import ModelPatcher  # type: ignore[import-not-found]

    load, offload = mm.get_torch_device(), mm.unet_offload_device()
    patchers = {}
    for part, modules in pipe.torch_modules().items():
        if not modules:
            continue  # a weight-free music encoder (beats only): nothing to move
        weights = _weights_class(part)()
        for i, module in enumerate(modules):
            weights.add_module(str(i), module)
        first = next(iter(weights.parameters()), None)
        weights.device = first.device if first is not None else offload  # where it is now (ModelPatcher's view)
        patcher = ModelPatcher(weights, load_device=load, offload_device=offload)
        _on_detach(patcher, getattr(pipe, part))
        patchers[part] = patcher
    _MANAGED[pipe] = (mm, patchers)
    return pipe


def _on_detach(patcher, owner) -> None:
    """When ComfyUI unloads a part, let its wrapper (FlowAE keeps a device) follow the weights."""
    try:
        from comfy.patcher_extension import CallbacksMP  # type: ignore[import-not-found]
    except ImportError:  # an older ComfyUI: load_models() syncs the wrapper before each use anyway
        return
    ref = weakref.ref(owner)

    def follow(patcher, unpatch_all=True):
        obj = ref()
        if unpatch_all and obj is not None:
            obj.to(patcher.offload_device)

    patcher.add_callback(CallbacksMP.ON_DETACH, follow)


def managed_patchers(pipe) -> dict[str, Any]:
    """{part: ModelPatcher} of a pipeline registered by :func:`manage_model` ({} when it is not)."""
    if model_management is None:
        return {}
    try:
        known = _MANAGED.get(pipe)
    except TypeError:  # not weak-referenceable: not one of ours
        return {}
    return dict(known[1]) if known is not None and known[0] is model_management else {}


def load_models(pipe, parts=("flow_ae", "diffusion", "music"), memory_required: int = 0) -> None:
    """Right before a node's work: ComfyUI loads these parts of a managed pipeline onto its torch
    device through load_models_gpu (freeing other models' VRAM first: ``memory_required`` bytes for
    the work on top of the weights, else ComfyUI's minimum inference reserve) and the pipeline's
    wrappers follow. A no-op outside ComfyUI and for a pipeline the loader did not register."""
    patchers = managed_patchers(pipe)
    chosen = [(part, patchers[part]) for part in parts if part in patchers]
    if not chosen:
        return
    mm = model_management
    kw = {"memory_required": int(memory_required)}
    if "force_full_load" in inspect.signature(mm.load_models_gpu).parameters:
        kw["force_full_load"] = True  # plain torch modules cannot run partly offloaded (no comfy.ops casts)
    mm.load_models_gpu([p for _, p in chosen], **kw)
    for part, patcher in chosen:
        _finish_load(patcher)
        pipe.to(patcher.load_device, parts=(part,))


def _finish_load(patcher) -> None:
    """--novram loads none of a model's plain torch modules (only comfy.ops layers can run from the
    CPU): move the part wholly, as core's upscale node does, and tell ComfyUI its size is loaded."""
    weights, device = patcher.model, patcher.load_device
    tensors = list(weights.parameters()) + list(weights.buffers())
    if all(_same_device(t.device, device) for t in tensors):
        return
    weights.to(device)
    weights.device = device
    weights.model_loaded_weight_memory = patcher.model_size()


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
