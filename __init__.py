"""Dance Any Beat: the ComfyUI entry point of the pack.

ComfyUI imports this folder as a package. Our torch library `dabfusion` lives beside this file, so
the folder is appended (not prepended: ComfyUI's own top-level `nodes` must keep winning) to
sys.path. Importing this file without ComfyUI installed works, which is how the tests use it.
"""

import os
import sys

_PACK_DIR = os.path.dirname(os.path.abspath(__file__))
if _PACK_DIR not in sys.path:
    sys.path.append(_PACK_DIR)

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
