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


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synthdance_tiny(tmp_path_factory) -> Path:
    """SynthDance tiny, seed 0, generated once per test session and shared by every module."""
    from dabfusion.synth import MANIFEST_NAME, generate

    out = tmp_path_factory.getbasetemp() / "synthdance_tiny_seed0"
    if not (out / MANIFEST_NAME).is_file():
        generate(out, "tiny", 0, workers=2, progress=False)
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small CPU models on a shared 2-core box: one thread is ~8x faster than two under load.
    A module asks for it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
