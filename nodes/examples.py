"""The pack's example files in ComfyUI's input folder, so that every template runs as shipped.

Core Load Image accepts only files in the input folder: its ``VALIDATE_INPUTS`` asks
``folder_paths.exists_annotated_filepath(name)``, i.e. ``os.path.exists(input_dir / name)`` for a
plain name (``name [output]`` / ``[temp]`` for the other two folders), and its combo lists
``os.listdir(get_input_directory())``. No entry of a template can point into the pack folder, so
the example image a template names has to be in ``input/`` before the user presses Run, and in
the combo when the template is opened (its preview then shows too).

ComfyUI sets the input folder (``--input-directory``, ``--base-directory``) before it imports the
custom nodes, so :func:`provide_examples` runs once at import, inside ComfyUI only. It copies each
file of ``dabfusion/assets/examples/`` (all named ``dance_any_beat_*``, about 60 KB in all) that the
input folder lacks, never replaces a file that is there (a user's file of the same name wins),
and only logs a warning when the folder is not writable.
"""

from __future__ import annotations

import logging
from pathlib import Path

from . import comfy_compat as compat

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "dabfusion" / "assets" / "examples"

log = logging.getLogger(__name__)


def example_files() -> list[Path]:
    """The example files the pack ships (the ones the templates name)."""
    if not EXAMPLES_DIR.is_dir():
        return []
    return sorted(p for p in EXAMPLES_DIR.iterdir() if p.is_file() and not p.name.startswith("."))


def provide_examples(input_dir: str | Path) -> list[Path]:
    """Copy the example files that ``input_dir`` lacks into it; returns the files written.

    A file that is already there is left alone, whatever it holds. The copy creates the file
    exclusively (``open(..., "xb")``), so a file that appears meanwhile is not overwritten either.
    """
    folder = Path(input_dir)
    written = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for src in example_files():
            dest = folder / src.name
            if dest.exists():
                continue
            try:
                with open(dest, "xb") as f:
                    f.write(src.read_bytes())
            except FileExistsError:
                continue
            written.append(dest)
    except OSError as err:
        log.warning("Dance Any Beat: could not put the example files into the input folder %s (%s); the "
                    "templates need them: copy %s there by hand", folder, err, EXAMPLES_DIR)
        return written
    if written:
        log.info("Dance Any Beat: put the example files %s into %s (for the pack's templates)",
                 ", ".join(p.name for p in written), folder)
    return written


def provide_examples_in_comfyui() -> list[Path]:
    """At import inside ComfyUI: the examples into its input folder. Outside ComfyUI: nothing."""
    if not compat.IN_COMFYUI:
        return []
    return provide_examples(compat.input_directory())
