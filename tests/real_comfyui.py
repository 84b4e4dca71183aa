"""ComfyUI's real runtime modules for the tests that run a node both ways (compat fallback and ComfyUI).

``DABFUSION_COMFYUI`` names a ComfyUI checkout (its requirements must be in this Python; ``make test``
installs them); unset, ``../shared/comfyui`` beside the clone is used when it is there; empty: none. The
``comfyui`` fixture imports ``comfy.utils`` and ``comfy.model_management`` (and the model patcher)
from it in CPU mode, as ``main.py --cpu`` does, and removes them again at the end of the module;
ComfyUI's top-level modules (its ``nodes``, ``utils``) never stay importable, so other tests'
imports are unchanged. Without a checkout the fixture skips and says why.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

#: ../shared/comfyui beside the clone (what `make test` uses) unless DABFUSION_COMFYUI says otherwise ("" = none).
SHARED_COMFYUI = Path(__file__).resolve().parents[1].parent / "shared" / "comfyui"
COMFYUI = os.environ.get("DABFUSION_COMFYUI", str(SHARED_COMFYUI) if (SHARED_COMFYUI / "main.py").is_file() else "")


def import_comfyui(root: str):
    """``(comfy.utils, comfy.model_management)`` from a checkout, in CPU mode (no GPU probing)."""
    sys.path.insert(0, root)
    try:
        from comfy.cli_args import args

        args.cpu = True
        import comfy.model_management as mm
        import comfy.model_patcher  # noqa: F401 - what compat.manage_model builds on
        import comfy.patcher_extension  # noqa: F401
        import comfy.utils as cu
    finally:
        sys.path.remove(root)
    return cu, mm


@pytest.fixture(scope="module")
def comfyui():
    if not COMFYUI:
        pytest.skip("ComfyUI variant: no ComfyUI (neither ../shared/comfyui beside the clone nor DABFUSION_COMFYUI "
                    "set to a ComfyUI checkout, with its requirements in this Python: `make test` installs them) "
                    "to run the nodes through ComfyUI's own executor, progress bar and model management")
    before = set(sys.modules)
    try:
        cu, mm = import_comfyui(COMFYUI)
    except Exception as err:  # noqa: BLE001 - any import failure means: not runnable here
        pytest.skip(f"ComfyUI variant: could not import ComfyUI from {COMFYUI}: {type(err).__name__}: {err}")
    yield cu, mm
    mm.unload_all_models()
    for name in set(sys.modules) - before:
        if name == "comfy" or name.startswith(("comfy.", "comfy_")):
            del sys.modules[name]
