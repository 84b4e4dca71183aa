"""Prove that ``requirements.txt`` installs into a numpy-2 ComfyUI environment without downgrades.

    python scripts/check_install.py                      # a fresh venv: numpy>=2 + torch, then the pack
    python scripts/check_install.py --comfyui-requirements PATH/ComfyUI/requirements.txt
    python scripts/check_install.py --python PATH/ComfyUI/venv/bin/python   # installs INTO that env

Without ``--python`` it creates a fresh venv (``--venv DIR``, default a temporary folder) and
installs what a ComfyUI install already has: ``numpy>=2`` and torch, torchvision and torchaudio as
one matched set from the package registry, pinned by ``constraints.txt`` (as ``make install``
does), plus ComfyUI's own requirements file when given. Then it runs what a user runs,
``pip install -r requirements.txt``, and compares the installed distributions before and after.

Exit status: 0 when numpy, torch, torchvision and torchaudio are unchanged and no installed package
was downgraded or removed; 1 when one was; 2 when an install step failed. Added and upgraded
packages are listed; ``pip check`` and an import of the pack's music stack (CLAP through
transformers, librosa, cv2) are reported too, the import failing the run when it fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = ("numpy", "torch", "torchvision", "torchaudio")  # ComfyUI's: must not change at all
SHOWN = HOST + ("transformers", "opencv-python", "scipy", "numba", "librosa", "ultralytics")

SMOKE = r"""
import sys, numpy as np, torch
sys.path.insert(0, sys.argv[1])
import cv2, librosa, transformers
from dabfusion.music import clap_branch as cb
torch.manual_seed(0)
enc = cb.ClapAudioEncoder.from_hf_config(cb.tiny_hf_config())
e = enc.embed(np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1, 48000)
assert e.shape == (512,) and abs(float(np.linalg.norm(e)) - 1) < 1e-4
try:
    import laion_clap  # noqa: F401
    print("laion_clap importable: yes")
except ImportError:
    print("laion_clap importable: no")
print(f"import check: numpy {np.__version__}, torch {torch.__version__}, cv2 {cv2.__version__}, "
      f"librosa {librosa.__version__}, transformers {transformers.__version__}; "
      f"CLAP audio tower (transformers) embeds 1 s of noise to a unit 512-d vector")
"""


def norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def run(cmd: list[str], log: Path, what: str) -> None:
    """Run a step, its output to ``log``; on failure print the tail and exit 2."""
    print(f"$ {' '.join(cmd)}", flush=True)
    t = time.time()
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    print(f"  ({what}: {time.time() - t:.0f} s, rc {rc})", flush=True)
    if rc != 0:
        tail = log.read_text().splitlines()[-40:]
        print("\n".join(tail))
        print(f"FAILED: {what} (full log: {log})")
        sys.exit(2)


def installed(py: str) -> dict[str, str]:
    out = subprocess.run([py, "-m", "pip", "list", "--format=json"], check=True,
                         capture_output=True, text=True).stdout
    return {norm(d["name"]): d["version"] for d in json.loads(out)}


def parse_version(v: str):
    try:
        from packaging.version import Version

        return Version(v)
    except Exception:  # noqa: BLE001 - packaging missing or an odd version string
        return tuple(int(p) if p.isdigit() else 0 for p in v.split("+")[0].split("."))


def versions_line(d: dict[str, str]) -> str:
    return ", ".join(f"{n} {d.get(n, '-')}" for n in SHOWN)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", help="an existing ComfyUI Python to install into (changes that env)")
    ap.add_argument("--venv", help="where to create the fresh venv (default: a temporary folder)")
    ap.add_argument("--comfyui-requirements", help="ComfyUI's requirements.txt, installed first")
    ap.add_argument("--requirements", default=str(ROOT / "requirements.txt"))
    ap.add_argument("--constraints", default=str(ROOT / "constraints.txt"),
                    help="torch/torchvision/torchaudio pins for the fresh venv")
    ap.add_argument("--log", help="pip's output (default: install.log beside the venv)")
    args = ap.parse_args(argv)

    if args.python:
        py = args.python
        log = Path(args.log or tempfile.mkstemp(prefix="check_install_", suffix=".log")[1])
        print(f"Installing into the existing environment of {py}")
    else:
        venv = Path(args.venv or tempfile.mkdtemp(prefix="dab_install_check_"))
        log = Path(args.log or venv.parent / f"{venv.name}.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        print(f"Fresh venv: {venv} (log: {log})")
        run([sys.executable, "-m", "venv", str(venv)], log, "create the venv")
        py = str(venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
        run([py, "-m", "pip", "install", "-q", "--upgrade", "pip"], log, "upgrade pip")
        base = [py, "-m", "pip", "install", "-c", args.constraints, "numpy>=2", "torch",
                "torchvision", "torchaudio"]
        if args.comfyui_requirements:
            base += ["-r", args.comfyui_requirements]
        run(base, log, "install the ComfyUI-like base: numpy>=2 + torch")

    before = installed(py)
    print(f"before: {versions_line(before)}  ({len(before)} distributions)")
    if "numpy" in before and not before["numpy"].startswith("2"):
        print(f"note: this environment has numpy {before['numpy']}, not numpy 2")
    run([py, "-m", "pip", "install", "-r", args.requirements], log, "pip install -r requirements.txt")
    after = installed(py)
    print(f"after:  {versions_line(after)}  ({len(after)} distributions)")

    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = {n: (before[n], after[n]) for n in set(before) & set(after) if before[n] != after[n]}
    down = {n: v for n, v in changed.items() if parse_version(v[1]) < parse_version(v[0])}
    up = {n: v for n, v in changed.items() if n not in down}
    host = {n: v for n, v in changed.items() if n in HOST}
    print(f"added ({len(added)}): {', '.join(f'{n} {after[n]}' for n in added) or '-'}")
    print(f"upgraded ({len(up)}): {', '.join(f'{n} {a} -> {b}' for n, (a, b) in sorted(up.items())) or '-'}")
    print(f"downgraded ({len(down)}): "
          f"{', '.join(f'{n} {a} -> {b}' for n, (a, b) in sorted(down.items())) or '-'}")
    print(f"removed ({len(removed)}): {', '.join(removed) or '-'}")
    for banned in ("laion-clap", "wandb", "webdataset", "wget"):
        if banned in added:
            print(f"note: {banned} was pulled in")

    check = subprocess.run([py, "-m", "pip", "check"], capture_output=True, text=True)
    print("pip check: " + (check.stdout.strip() or check.stderr.strip() or "ok").replace("\n", "; "))
    smoke = subprocess.run([py, "-c", SMOKE, str(ROOT)], capture_output=True, text=True,
                           env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    print((smoke.stdout.strip() or "") + (f"\n{smoke.stderr.strip()[-2000:]}" if smoke.returncode else ""))

    bad = []
    if host:
        bad.append("ComfyUI's own packages changed: "
                   + ", ".join(f"{n} {a} -> {b}" for n, (a, b) in sorted(host.items())))
    if down:
        bad.append(f"{len(down)} package(s) downgraded")
    if removed:
        bad.append(f"{len(removed)} package(s) removed")
    if smoke.returncode:
        bad.append("the pack's music stack does not import and run")
    print(f"numpy {before.get('numpy', '-')} -> {after.get('numpy', '-')}, "
          f"torch {before.get('torch', '-')} -> {after.get('torch', '-')}")
    if bad:
        print("FAIL: " + "; ".join(bad))
        return 1
    print("OK: nothing downgraded; numpy, torch, torchvision and torchaudio unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
