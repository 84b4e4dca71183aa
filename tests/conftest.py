"""Shared pytest setup: tests never reach a model hub, and they find the package from a checkout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a clone without `pip install -e .`
    sys.path.insert(0, str(ROOT))
