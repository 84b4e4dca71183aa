"""A DabFusion model bundle: the flow AE, the flow diffusion model and the music encoder, as one folder.

A generator needs three parts that only work together: the flow auto-encoder whose latents and
flows the diffusion model learned, the diffusion model, and the music encoder whose embedding it
was conditioned on (adapters included). The diffusion checkpoint records the other two (the flow
AE's weight hash and the music encoder's spec), so a bundle is checked when it is loaded instead of
producing noise later. Layout::

    my_model/
      bundle.json                optional manifest (see below)
      flow_ae.safetensors        training/train_flow_ae.py's export (+ flow_ae.json)
      diffusion.safetensors      training/train_diffusion.py's export (+ diffusion.json)
      *.safetensors              music adapters, if the model uses CLAP / Wav2CLIP / mel branches

``bundle.json`` (all keys optional)::

    {"format": "dabfusion.bundle", "version": 1, "name": "...", "description": "...",
     "flow_ae": "flow_ae.safetensors", "diffusion": "diffusion.safetensors",
     "music": {"clap": "music_audioset_epoch_15_esc_90.14.pt", "clap_adapter": "clap_adapter.safetensors"},
     "fps": 30, "defaults": {"sampler": "dpm++", "steps": 25, "guidance": 1.0}, "training": {...}}

Frozen third-party encoders (CLAP, Wav2CLIP) are not copied into bundles: they are looked up by
file name in the ``clap`` / ``wav2clip`` model folders. The music encoder is rebuilt from the spec
stored in the diffusion checkpoint, so a bundle of the default (beats-only) encoder needs no
music files at all. :func:`write_bundle` assembles a bundle from training outputs;
:func:`load_parts` loads and cross-checks its parts, which
:class:`dabfusion.pipeline.DabFusionPipeline` is built from.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import ConfigMismatchError, ModelFileError

BUNDLE_FORMAT = "dabfusion.bundle"
BUNDLE_VERSION = 1
MANIFEST_NAME = "bundle.json"
FLOW_AE_NAME = "flow_ae.safetensors"
DIFFUSION_NAME = "diffusion.safetensors"
DEFAULT_FPS = 30.0
#: The built-in demo model (trained on SynthDance by the project's own scripts).
DEMO_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "demo_model"
MUSIC_BRANCHES = ("clap", "wav2clip", "mel")


@dataclass(frozen=True)
class BundleFiles:
    """Where each part of a bundle is, and what its manifest says."""

    root: Path
    flow_ae: Path
    diffusion: Path
    adapters: dict[str, Path] = field(default_factory=dict)   # branch -> adapter file
    encoders: dict[str, str] = field(default_factory=dict)    # branch -> frozen encoder file (name or path)
    manifest: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.manifest.get("name") or self.root.name)


def is_bundle_dir(path: str | os.PathLike) -> bool:
    """A folder that holds a manifest or a diffusion checkpoint."""
    p = Path(path)
    return p.is_dir() and ((p / MANIFEST_NAME).is_file() or (p / DIFFUSION_NAME).is_file())


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelFileError(f"{path} is not a readable JSON bundle manifest: {err}") from None
    if not isinstance(data, dict) or data.get("format", BUNDLE_FORMAT) != BUNDLE_FORMAT:
        raise ModelFileError(f"{path} is not a DabFusion bundle manifest (format {BUNDLE_FORMAT!r} expected)")
    return data


def _adapter_branch(path: Path) -> str | None:
    """The branch of a music adapter file, or None if the file is something else."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception:  # noqa: BLE001 - not a safetensors file: not an adapter
        return None
    if meta.get("format") != "dabfusion.music_adapter" or "config" not in meta:
        return None
    try:
        return json.loads(meta["config"]).get("branch")
    except ValueError:
        return None


def find_bundle_files(path: str | os.PathLike) -> BundleFiles:
    """Locate the parts of the bundle in folder ``path`` (clear errors for what is missing)."""
    root = Path(path).expanduser()
    if root.is_file() and root.name == MANIFEST_NAME:
        root = root.parent
    if root.is_file():
        raise ModelFileError(
            f"{root} is a file; a DabFusion model is a folder holding {FLOW_AE_NAME} and {DIFFUSION_NAME} "
            f"(and optionally {MANIFEST_NAME}). Give the folder.")
    if not root.is_dir():
        raise ModelFileError(f"DabFusion model folder {root} not found.")
    manifest = _read_manifest(root)
    flow_ae = root / manifest.get("flow_ae", FLOW_AE_NAME)
    diffusion = root / manifest.get("diffusion", DIFFUSION_NAME)
    for part, p, script in (("flow AE", flow_ae, "training/train_flow_ae.py"),
                            ("diffusion", diffusion, "training/train_diffusion.py")):
        if not p.is_file():
            raise ModelFileError(
                f"The DabFusion model folder {root} has no {part} checkpoint ({p.name}). Put the file "
                f"{script} exported there, or pick another model.")
    music = dict(manifest.get("music") or {})
    adapters: dict[str, Path] = {}
    for branch in MUSIC_BRANCHES:
        name = music.get(f"{branch}_adapter")
        if name:
            adapters[branch] = root / name
    if len(adapters) < len(MUSIC_BRANCHES):  # look for the others among the bundle's files
        skip = {flow_ae.resolve(), diffusion.resolve(), *(a.resolve() for a in adapters.values())}
        for p in sorted(root.glob("*.safetensors")):
            if p.resolve() in skip:
                continue
            branch = _adapter_branch(p)
            if branch in MUSIC_BRANCHES and branch not in adapters:
                adapters[branch] = p
    encoders = {b: str(music[b]) for b in ("clap", "wav2clip") if music.get(b)}
    return BundleFiles(root, flow_ae, diffusion, adapters, encoders, manifest)


def write_bundle(out_dir: str | os.PathLike, *, flow_ae: str | os.PathLike, diffusion: str | os.PathLike,
                 adapters: Mapping[str, str | os.PathLike] | None = None,
                 encoders: Mapping[str, str] | None = None, name: str | None = None,
                 description: str | None = None, fps: float | None = None,
                 defaults: Mapping[str, Any] | None = None, training: Mapping[str, Any] | None = None) -> Path:
    """Copy training outputs into a bundle folder with its manifest; returns the folder.

    ``flow_ae`` / ``diffusion``: checkpoints written by the training scripts (their ``.json``
    companions are copied too). ``adapters``: branch -> adapter file. ``encoders``: branch -> the
    frozen CLAP / Wav2CLIP file *name* (looked up in the model folders, never copied).
    ``training``: free-form provenance (the exact commands, data, steps) kept in the manifest.
    """
    from .checkpoint_io import checkpoint_paths

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def copy(src: str | os.PathLike, name_: str) -> str:
        weights, cfg = checkpoint_paths(src)
        if not weights.is_file():
            raise ModelFileError(f"{weights} not found (while writing the bundle {out})")
        target = out / name_
        if weights.resolve() != target.resolve():
            shutil.copyfile(weights, target)
            if cfg.is_file():
                shutil.copyfile(cfg, target.with_suffix(".json"))
        return target.name

    music: dict[str, str] = {}
    for branch, src in (adapters or {}).items():
        music[f"{branch}_adapter"] = copy(src, f"{branch}_adapter.safetensors")
    for branch, file_name in (encoders or {}).items():
        music[branch] = Path(file_name).name
    manifest = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "name": name or out.name,
                "description": description or "", "flow_ae": copy(flow_ae, FLOW_AE_NAME),
                "diffusion": copy(diffusion, DIFFUSION_NAME), "music": music}
    if fps is not None:
        manifest["fps"] = float(fps)
    if defaults:
        manifest["defaults"] = dict(defaults)
    if training:
        manifest["training"] = dict(training)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out


# --------------------------------------------------------------------------------- music encoder


def music_encoder_for(spec: Mapping[str, Any], files: BundleFiles, *,
                      search_dirs: Mapping[str, Iterable[str | os.PathLike]] | None = None,
                      device: str = "cpu"):
    """Rebuild the music encoder a diffusion checkpoint's ``music_spec`` describes.

    Frozen encoders are found by the file name the spec (or the manifest) records, in
    ``search_dirs["clap"]`` / ``search_dirs["wav2clip"]``; adapters come from the bundle.
    """
    from .music import MusicEncoder
    from .music.adapters import MusicAdapter

    dirs = {k: list(v) for k, v in (search_dirs or {}).items()}
    branches = {b.get("name"): b for b in spec.get("branches", [])}
    unknown = sorted(set(branches) - {*MUSIC_BRANCHES, "beats"})
    if unknown:
        raise ConfigMismatchError(f"The diffusion model of {files.root} uses music branches {unknown} that this "
                                  "version of dabfusion does not know; update dabfusion.")
    kw: dict[str, Any] = {"beats": "beats" in branches}
    if spec.get("context_seconds") is not None:
        kw["context_seconds"] = float(spec["context_seconds"])
    for branch in MUSIC_BRANCHES:
        if branch not in branches:
            continue
        wants_adapter = branches[branch].get("adapter") is not None
        if wants_adapter:
            if branch not in files.adapters:
                raise ModelFileError(
                    f"The diffusion model of {files.root} was trained with a {branch} music adapter, but the "
                    f"folder has no {branch} adapter file. Put the adapter training/train_music_adapters.py "
                    f"wrote next to the model (e.g. {branch}_adapter.safetensors).")
            kw[f"{branch}_adapter"] = MusicAdapter.load(files.adapters[branch], device=device)
        if branch == "mel":
            kw["mel"] = True
            continue
        enc_file = files.encoders.get(branch) or (branches[branch].get("encoder") or {}).get("file")
        if branch == "clap":
            from .music.clap_branch import load_clap_audio

            kw["clap"] = load_clap_audio(enc_file, dirs.get("clap", ()), device=device)
        else:
            from .music.wav2clip_branch import load_wav2clip

            kw["wav2clip"] = load_wav2clip(enc_file, dirs.get("wav2clip", ()), device=device)
    return MusicEncoder(**kw)


# --------------------------------------------------------------------------------- loading


@dataclass
class LoadedParts:
    """The three parts of a generator, loaded and checked against each other (what
    :class:`dabfusion.pipeline.DabFusionPipeline` is built from)."""

    flow_ae: Any
    diffusion: Any
    music: Any
    files: BundleFiles
    header: dict


def separate_files(flow_ae: str | os.PathLike, diffusion: str | os.PathLike, *,
                   adapters: Mapping[str, str | os.PathLike] | None = None,
                   encoders: Mapping[str, str | os.PathLike] | None = None) -> BundleFiles:
    """A bundle's files when the checkpoints live apart (a training run's outputs)."""
    d = Path(diffusion).expanduser()
    return BundleFiles(d.parent, Path(flow_ae).expanduser(), d,
                       {k: Path(v).expanduser() for k, v in (adapters or {}).items()},
                       {k: str(v) for k, v in (encoders or {}).items()}, {})


def demo_files() -> BundleFiles:
    """The built-in demo model's files, or a clear error when this copy lacks them."""
    if not is_bundle_dir(DEMO_MODEL_DIR):
        raise ModelFileError(
            f"The built-in demo model is not in this copy of Dance Any Beat ({DEMO_MODEL_DIR} is missing "
            "or empty). Reinstall the package, or give a model folder with --checkpoint.")
    return find_bundle_files(DEMO_MODEL_DIR)


def load_diffusion_for(files: BundleFiles, flow_ae: Any, *, device: Any = "cpu", dtype: Any = None,
                       search_dirs: Mapping[str, Iterable[str | os.PathLike]] | None = None,
                       music: Any = None, keep_music: bool = False) -> tuple[Any, Any, dict]:
    """The diffusion model of ``files`` checked against ``flow_ae``, and the music encoder it was
    trained with: ``music`` is reused when its spec is the checkpoint's (``keep_music``: always; a
    music encoder built by the caller is then checked, not replaced)."""
    import torch

    from .diffusion import load_diffusion, read_diffusion_config
    from .diffusion.checkpoint import flow_ae_identity
    from .music.encoder import spec_hash

    device = torch.device(device)
    config = read_diffusion_config(files.diffusion)
    if config.music_spec is None:
        raise ConfigMismatchError(f"{files.diffusion} records no music encoder spec; re-export it with "
                                  "training/train_diffusion.py.")
    if music is None or (not keep_music and spec_hash(music.spec) != spec_hash(config.music_spec)):
        music = music_encoder_for(config.music_spec, files, search_dirs=search_dirs, device=str(device))
    # The identity hashes float32 values: a float32 model holds exactly the saved values (a bf16
    # copy would not), so only a reduced-precision load re-reads the file.
    ident = flow_ae_identity(flow_ae if flow_ae.dtype == torch.float32 else files.flow_ae)
    unet, header = load_diffusion(files.diffusion, music_spec=music.spec, flow_ae=ident, device=device,
                                  dtype=dtype if dtype not in (None, torch.float32) else None)
    return unet, music, header


def load_parts(files: BundleFiles, *, device: Any = "cpu", dtype: Any = None,
               search_dirs: Mapping[str, Iterable[str | os.PathLike]] | None = None, music: Any = None) -> LoadedParts:
    """Load and cross-check a bundle's parts (``music``: a music encoder the caller built, checked
    against the diffusion model's spec instead of rebuilt from it).

    Raises :class:`ModelFileError` for missing files and :class:`ConfigMismatchError` when the
    diffusion model was trained with another flow AE or another music encoder.
    """
    import torch

    from .flow_ae import FlowAE

    flow_ae = FlowAE.from_checkpoint(files.flow_ae, device=torch.device(device), dtype=dtype)
    unet, music, header = load_diffusion_for(files, flow_ae, device=device, dtype=dtype, search_dirs=search_dirs,
                                             music=music, keep_music=music is not None)
    return LoadedParts(flow_ae=flow_ae, diffusion=unet, music=music, files=files, header=header)


def files_stamp(root: Path) -> tuple:
    """Names, sizes and modification times of a folder's files: a cache key that changes with them."""
    stamps = []
    for p in sorted(root.glob("*")):
        if p.is_file():
            st = p.stat()
            stamps.append((p.name, st.st_size, st.st_mtime_ns))
    return (str(root.resolve()), tuple(stamps))
