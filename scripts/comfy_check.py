"""Check the pack inside a real ComfyUI, headless: it imports, lists its nodes and templates (with
thumbnails), and every template runs as shipped, from an empty input folder, to an MP4 with a video
and an audio track; the best-of-N + Beat Alignment template's scores, report and plot are checked too.

    python scripts/comfy_check.py PATH_TO_COMFYUI [--python PYTHON] [--checkpoint MODEL_DIR]
    python scripts/comfy_check.py PATH_TO_COMFYUI --check-install fresh    # + the install, numpy 2

What it does, leaving the ComfyUI checkout untouched (ComfyUI >= 0.3.x with ``--base-directory``):

1. makes a temporary base directory with ``custom_nodes/<pack>`` (a link to this checkout), an
   empty ``input/`` (as in a fresh ComfyUI: nothing is copied there by hand), ``output/`` and
   ``models/dabfusion/``;
2. starts ``python main.py --cpu --listen 127.0.0.1 --port N --base-directory BASE`` with the given
   Python (ComfyUI's environment, which must also have this pack's requirements);
3. waits for ``/object_info``, checks that all of the pack's nodes are listed and that the log has no
   "(IMPORT FAILED)" line for the pack; that the pack put its example files into ``input/`` and core
   Load Image lists the image each template names; that ``/workflow_templates`` lists the
   templates and that each one's JSON and thumbnail are served where the front-end (1.27) asks for
   them: ``/api/workflow_templates/<pack>/<name>.json`` and ``.../<name>.jpg`` (a square JPEG);
4. POSTs each ``workflows/api/*.json`` as shipped (only steps and length lowered with --steps /
   --seconds so a CPU finishes quickly) to ``/prompt`` with the UI workflow as extra_pnginfo, polls
   ``/history/{id}``, and checks that the MP4 has a video and an audio stream and the workflow in
   its metadata; core Save Video (when the ComfyUI has it) also saves the pack's VIDEO output.
   Every core Preview Image and Preview Any of a template is checked in the /history outputs: the
   image files were saved (Beat Alignment's plot among them), the sampler's ``report`` text has one
   line per candidate seed (seed .. seed + N - 1, best first) and the settings sampled with, and Beat
   Alignment's report its scores.
   A template with a Beat Alignment node gets at least BEAT_SECONDS of music, since beat tracking
   finds no beat in the example's first second.

5. with ``--browser chromium``: opens the real front-end in headless Chromium (DevTools protocol),
   checks that the pack's category in its template browser shows a card per template with the whole
   title and a thumbnail that loaded (screenshot ``template_browser.png``), loads each UI workflow with
   ``app.loadGraphData`` and checks that every node type is known and that ``app.graphToPrompt()``
   gives our API file on the inputs each node declares (so the UI and API versions are the same
   graph), saves a screenshot of each under the base directory, and queues one template (--ui-run)
   with the UI's queue button: that run must end in the MP4, shown as Video Combine's output in the UI.
   With ``--frontend latest|required|X.Y.Z`` the server serves that ``comfyui-frontend-package``
   (latest: the newest on the package index; required: ComfyUI's pin), installed once with pip into
   its own folder under ~/.cache/dabfusion and put first on ComfyUI's PYTHONPATH (ComfyUI's
   environment is left as it is); the version ComfyUI logs and the page reports must be that one.
   Checked with 1.27.10 (ComfyUI 0.3.64's pin) and 1.58.1 (see the README).

0. with ``--check-install comfyui``: first runs ``scripts/check_install.py --python PYTHON``, i.e.
   ``pip install -r requirements.txt`` INTO that ComfyUI environment (it changes it), and reports
   numpy, torch, ... before and after; with ``--check-install fresh``: check_install.py makes a fresh
   venv with numpy 2, torch and ComfyUI's own requirements.txt, installs the pack's requirements into
   it, and then the ComfyUI server of steps 2-5 runs in that venv (so the templates are run in the
   numpy-2 environment that a user's install gives). Either fails the check when check_install.py
   does (numpy/torch changed, a package downgraded or removed, the music stack not importing). Off
   by default: it takes minutes (fresh: several, downloading torch), the rest about one.

The model: --checkpoint (a model folder), else the built-in demo model, else (with a warning) a
random-weight bundle, which checks the plumbing but does not dance. Exit status 0 when every check
passed; the server log is kept under the base directory with --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACK_DIR_NAME = "comfyui-dance-any-beat"
NODES = ("DabFusionModelLoader", "DabFusionLoadMusic", "DabFusionMusicEncoder", "DabFusionSegmentPerson",
         "DabFusionFlowAEEncode", "DabFusionSampler", "DabFusionWarpDecode", "DabFusionVideoCombine",
         "DabFusionBeatAlignment")
EXAMPLES = ROOT / "dabfusion" / "assets" / "examples"
#: The least music (seconds) a graph with Beat Alignment gets: librosa finds the example music's first
#: beats at 0.89, 1.36 and 1.83 s and none in its first 1.5 s, and Beat Alignment refuses a clip
#: without beats.
BEAT_SECONDS = 2.0


class CheckFailed(Exception):
    pass


def log(msg: str) -> None:
    print(f"[comfy_check] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, data: dict | None = None, timeout: float = 10.0):
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read().decode() or "null")


def prepare_base(base: Path, checkpoint: Path | None, copy: bool) -> str:
    """Lay out the base directory; returns the checkpoint combo value the prompt should use."""
    sys.path.insert(0, str(ROOT))
    from dabfusion.model_bundle import DEMO_MODEL_DIR, is_bundle_dir

    for d in ("custom_nodes", "input", "output", "temp", "user", "models/dabfusion"):
        (base / d).mkdir(parents=True, exist_ok=True)
    target = base / "custom_nodes" / PACK_DIR_NAME
    if copy:
        shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(".git", ".venv", "out", "__pycache__", "data"))
    else:
        target.symlink_to(ROOT, target_is_directory=True)
    # input/ stays empty: the templates must run as shipped, with what the pack itself provides
    if any((base / "input").iterdir()):
        raise CheckFailed(f"{base / 'input'} is not empty")
    if checkpoint is not None:
        if not is_bundle_dir(checkpoint):
            raise CheckFailed(f"--checkpoint {checkpoint} is not a DabFusion model folder")
        (base / "models" / "dabfusion" / checkpoint.name).symlink_to(checkpoint.resolve(), target_is_directory=True)
        return checkpoint.name
    if is_bundle_dir(DEMO_MODEL_DIR):
        return "built-in demo model (SynthDance)"
    from dabfusion.testing.random_bundle import make_random_bundle

    log("WARNING: no demo model in this checkout and no --checkpoint: using a random-weight bundle "
        "(checks the plumbing, does not dance)")
    make_random_bundle(base / "models" / "dabfusion" / "random_tiny")
    return "random_tiny"


def server_command(comfy: Path, python: str, port: int, base: Path) -> list[str]:
    cli = (comfy / "comfy" / "cli_args.py").read_text(encoding="utf-8", errors="replace")
    if "--base-directory" not in cli:
        raise CheckFailed("this ComfyUI has no --base-directory option (too old); update it")
    cmd = [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--base-directory", str(base)]
    if "--database-url" in cli:
        cmd += ["--database-url", "sqlite:///:memory:"]
    return cmd


def wait_for_server(url: str, proc: subprocess.Popen, log_path: Path, timeout: float) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise CheckFailed(f"ComfyUI exited with status {proc.returncode} before it was ready; see {log_path}:\n"
                              + tail(log_path))
        try:
            status, info = http_json(f"{url}/object_info", timeout=30)
            if status == 200:
                return info
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(1.0)
    raise CheckFailed(f"ComfyUI did not answer /object_info within {timeout:.0f} s; see {log_path}")


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def check_import(info: dict, log_path: Path) -> None:
    missing = [n for n in NODES if n not in info]
    text = log_path.read_text(errors="replace")
    failed = [line for line in text.splitlines() if "IMPORT FAILED" in line and PACK_DIR_NAME in line]
    if failed or missing:
        raise CheckFailed(f"the pack did not import cleanly: missing nodes {missing}; {failed}\n" + tail(log_path, 60))
    for key in NODES:
        if not info[key]["category"].startswith("Dance Any Beat/"):
            raise CheckFailed(f"{key} has category {info[key]['category']!r}")
    log(f"pack imported: {len(NODES)} nodes listed in /object_info, no IMPORT FAILED in the log")


def check_inputs(info: dict, base: Path) -> None:
    """The pack put its example files into the (empty) input folder; core Load Image lists them."""
    present = sorted(p.name for p in (base / "input").iterdir() if p.is_file())
    missing = [f.name for f in EXAMPLES.iterdir() if f.is_file() and f.name not in present]
    if missing:
        raise CheckFailed(f"input/ has {present}: the pack did not put {missing} there when it loaded")
    choices = info["LoadImage"]["input"]["required"]["image"][0]
    for path in sorted((ROOT / "workflows" / "api").glob("*.json")):
        for node in json.loads(path.read_text(encoding="utf-8")).values():
            if node["class_type"] == "LoadImage" and node["inputs"]["image"] not in choices:
                raise CheckFailed(f"{path.stem}: core Load Image does not offer {node['inputs']['image']!r} "
                                  f"(it lists {choices})")
    log(f"input/ was empty at start; the pack put {present} there and core Load Image lists the templates' images")


def template_url(url: str, name: str, ext: str) -> str:
    """Where front-end 1.27 fetches a custom pack's template file: api.apiURL('/workflow_templates/<pack>/<name>.<ext>')."""
    quote = urllib.parse.quote
    return f"{url}/api/workflow_templates/{quote(PACK_DIR_NAME)}/{quote(name)}.{ext}"


def check_templates(url: str) -> None:
    import io

    from PIL import Image

    status, templates = http_json(f"{url}/workflow_templates")
    names = set(templates.get(PACK_DIR_NAME, [])) if status == 200 and isinstance(templates, dict) else set()
    expected = {p.stem for p in (ROOT / "workflows").glob("*.json")}
    if not expected <= names:
        raise CheckFailed(f"/workflow_templates lists {sorted(names)} for the pack, expected {sorted(expected)}")
    for name in sorted(expected):
        with urllib.request.urlopen(template_url(url, name, "json"), timeout=10) as r:
            json.loads(r.read().decode())
        try:
            with urllib.request.urlopen(template_url(url, name, "jpg"), timeout=10) as r:
                kind, data = r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as err:
            raise CheckFailed(f"template {name!r} has no thumbnail: {template_url(url, name, 'jpg')} "
                              f"answered {err.code}") from None
        with Image.open(io.BytesIO(data)) as img:
            if kind != "image/jpeg" or img.format != "JPEG" or img.width != img.height or img.width < 256:
                raise CheckFailed(f"thumbnail of {name!r}: {kind}, {img.format} {img.size}; want a square JPEG")
        log(f"template {name!r}: listed, JSON and thumbnail ({img.width}x{img.height} JPEG, {len(data)} bytes) served")


def make_prompt(name: str, checkpoint: str, steps: int, seconds: float, save_video: bool) -> tuple[dict, dict]:
    """An example API workflow, lowered for a CPU; with ``save_video`` core SaveVideo also saves our VIDEO."""
    api = json.loads((ROOT / "workflows" / "api" / f"{name}.json").read_text())
    ui = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
    if save_video:
        combine = next(nid for nid, n in api.items() if n["class_type"] == "DabFusionVideoCombine")
        api["900"] = {"class_type": "SaveVideo", "inputs": {"video": [combine, 0], "filename_prefix": "core/saved",
                                                           "format": "auto", "codec": "auto"}}
    if any(n["class_type"] == "DabFusionBeatAlignment" for n in api.values()) and seconds < BEAT_SECONDS:
        log(f"{name}: has Beat Alignment, so {BEAT_SECONDS:g} s of music instead of {seconds:g} s (beats to measure)")
        seconds = BEAT_SECONDS
    for node in api.values():
        if node["class_type"] == "DabFusionModelLoader":
            node["inputs"]["checkpoint"] = checkpoint
        if node["class_type"] == "DabFusionSampler":
            node["inputs"]["steps"] = steps
            if node["inputs"].get("length"):
                node["inputs"]["length"] = seconds
        if node["class_type"] == "DabFusionLoadMusic" and node["inputs"].get("duration"):
            node["inputs"]["duration"] = seconds
    return api, ui


def run_prompt(url: str, api: dict, ui: dict, timeout: float, log_path: Path) -> dict:
    client = uuid.uuid4().hex
    try:
        status, answer = http_json(f"{url}/prompt", {"prompt": api, "client_id": client,
                                                      "extra_data": {"extra_pnginfo": {"workflow": ui}}})
    except urllib.error.HTTPError as err:
        raise CheckFailed(f"/prompt refused the workflow: {err.read().decode(errors='replace')}") from None
    if answer.get("node_errors"):
        raise CheckFailed(f"/prompt reported node errors: {json.dumps(answer['node_errors'])[:2000]}")
    prompt_id = answer["prompt_id"]
    log(f"prompt {prompt_id} queued")
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, history = http_json(f"{url}/history/{prompt_id}")
        entry = (history or {}).get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None and (
                entry["status"].get("completed") or entry["status"].get("status_str") == "error"):
            if entry["status"].get("status_str") == "error":
                messages = [m for m in entry["status"].get("messages", []) if m[0] == "execution_error"]
                raise CheckFailed(f"the workflow failed: {json.dumps(messages)[:3000]}")
            return entry
        time.sleep(1.0)
    raise CheckFailed(f"the workflow did not finish within {timeout:.0f} s; see {log_path}:\n" + tail(log_path))


def check_video(entry: dict, api: dict, base: Path, node_type: str = "DabFusionVideoCombine") -> Path:
    import av

    combine = next(nid for nid, n in api.items() if n["class_type"] == node_type)
    images = entry["outputs"].get(combine, {}).get("images") or []
    if not images:
        raise CheckFailed(f"{node_type} returned no preview: {entry['outputs'].get(combine)}")
    item = images[0]
    path = base / item.get("type", "output") / item.get("subfolder", "") / item["filename"]
    if not path.is_file():
        raise CheckFailed(f"the MP4 {path} is not there")
    with av.open(str(path)) as c:
        n_video, n_audio = len(c.streams.video), len(c.streams.audio)
        frames = c.streams.video[0].frames if n_video else 0
        has_workflow = "workflow" in c.metadata and "prompt" in c.metadata
    if n_video != 1 or n_audio != 1 or frames < 1:
        raise CheckFailed(f"{path}: {n_video} video / {n_audio} audio streams, {frames} frames")
    if not has_workflow:
        raise CheckFailed(f"{path} has no workflow/prompt in its metadata")
    log(f"{node_type}: MP4 ok: {path} ({frames} frames, video + audio, workflow in metadata)")
    return path


def check_previews(entry: dict, api: dict, base: Path) -> int:
    """Core Preview Image / Preview Any of a template, in the /history outputs; the number checked.

    Preview Image: its image files exist (Beat Alignment's plot: a picture wider than tall). Preview
    Any fed by the sampler's ``report``: one line per candidate seed, seeds seed .. seed + N - 1, best
    first, and the settings sampled with; fed by Beat Alignment's ``report``: the scores and the tempo."""
    from PIL import Image

    checked = 0
    for nid, node in sorted(api.items(), key=lambda kv: int(kv[0])):
        kind = node["class_type"]
        if kind not in ("PreviewImage", "PreviewAny"):
            continue
        src_id, slot = node["inputs"]["images" if kind == "PreviewImage" else "source"]
        src = api[src_id]["class_type"]
        what = f"{kind} #{nid} ({src} output {slot})"
        out = entry["outputs"].get(nid) or {}
        if kind == "PreviewImage":
            images = out.get("images") or []
            if not images:
                raise CheckFailed(f"{what} shows no image: {out}")
            for item in images:
                path = base / item.get("type", "temp") / item.get("subfolder", "") / item["filename"]
                if not path.is_file():
                    raise CheckFailed(f"{what}: {path} was not saved")
                with Image.open(path) as img:
                    size, fmt = img.size, img.format
                    pixels = img.convert("L").getextrema()
            if src == "DabFusionBeatAlignment" and not (size[0] > size[1] and pixels[0] < pixels[1]):
                raise CheckFailed(f"{what}: the plot {path} is {fmt} {size}, pixel range {pixels}")
            log(f"{what}: {len(images)} image(s) saved, {fmt} {size[0]}x{size[1]}: {path}")
        else:
            text = out.get("text") or []
            if not text or not isinstance(text[0], str) or not text[0].strip():
                raise CheckFailed(f"{what} shows no text: {out}")
            lines = text[0].splitlines()
            if src == "DabFusionSampler":
                sampler = api[src_id]["inputs"]
                n, seed = int(sampler.get("candidates", 1)), int(sampler["seed"])
                if not any(line.startswith("sampling: ") and " steps" in line and "guidance" in line
                           for line in lines):
                    raise CheckFailed(f"{what}: the report does not show the settings sampled with: {lines}")
                lines = [line for line in lines if not line.startswith(("sampling: ", "length: "))]
                seeds = []
                for line in lines if n > 1 else []:  # one candidate: "seed S (not scored ...)"
                    head = line.split(":")[0].split()
                    if len(head) < 2 or head[-2] != "seed" or not head[-1].isdigit():
                        raise CheckFailed(f"{what}: not a seed's score line: {line!r}")
                    seeds.append(int(head[-1]))
                if n > 1 and (len(lines) != n or sorted(seeds) != list(range(seed, seed + n))
                              or not lines[0].startswith("best")):
                    raise CheckFailed(f"{what}: expected one score line per candidate seed {seed}..{seed + n - 1}, "
                                      f"best first; got {lines}")
                if n == 1 and f"seed {seed}" not in text[0]:
                    raise CheckFailed(f"{what}: {text[0]!r} does not name seed {seed}")
            elif src == "DabFusionBeatAlignment" and not all(k in text[0] for k in ("2D-MM Align", "AV-Align",
                                                                                    "BPM")):
                raise CheckFailed(f"{what}: not a beat report: {text[0]!r}")
            log(f"{what} shows {len(lines)} line(s): " + " | ".join(line.strip() for line in lines))
        checked += 1
    return checked


def run_check_install(mode: str, comfy: Path, python: str, base: Path) -> str:
    """scripts/check_install.py (see the module docstring, step 0); returns the Python ComfyUI should run with."""
    cmd = [sys.executable, str(ROOT / "scripts" / "check_install.py"), "--log", str(base / "check_install_pip.log")]
    if mode == "comfyui":
        cmd += ["--python", python]
        target = python
    else:
        venv = base / "install_venv"
        cmd += ["--venv", str(venv)]
        if (comfy / "requirements.txt").is_file():
            cmd += ["--comfyui-requirements", str(comfy / "requirements.txt")]
        target = str(venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    log("install check: " + " ".join(cmd))
    started = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(ROOT))
    (base / "check_install.out").write_text(proc.stdout)
    for line in proc.stdout.splitlines():
        if line.startswith(("before:", "after:", "added", "upgraded", "downgraded", "removed", "pip check",
                            "laion_clap", "import check", "numpy ", "OK:", "FAIL", "note:")):
            log(f"  check_install | {line}")
    if proc.returncode != 0:
        raise CheckFailed(f"check_install.py exited {proc.returncode} after {time.time() - started:.0f} s:\n"
                          + "\n".join(proc.stdout.splitlines()[-30:]))
    numpy = subprocess.run([target, "-c", "import numpy; print(numpy.__version__)"], capture_output=True,
                           text=True).stdout.strip()
    log(f"install check passed in {time.time() - started:.0f} s: numpy in {target} after the install: {numpy}")
    if not numpy.startswith("2."):
        log(f"WARNING: {target} has numpy {numpy!r}, not numpy 2: this proves nothing about numpy 2 "
            "(use --check-install fresh)")
    return target


# ----------------------------------------------------------------------------- the front-end package

FRONTEND_PACKAGE = "comfyui-frontend-package"
#: Where --frontend keeps the front-end packages it installs (one folder per version, reused).
FRONTEND_CACHE = Path(os.environ.get("DABFUSION_CACHE") or Path.home() / ".cache" / "dabfusion") / FRONTEND_PACKAGE
_RELEASE = r"\d+\.\d+\.\d+"


def _release_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def parse_pip_index_versions(text: str) -> list[str]:
    """The versions ``pip index versions PACKAGE`` printed (its "Available versions:" line), as listed."""
    for line in text.splitlines():
        if line.strip().startswith("Available versions:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()]
    return []


def newest_release(versions: list[str]) -> str:
    """The newest plain X.Y.Z release (pre-, post- and dev releases are passed over)."""
    import re

    plain = [v for v in versions if re.fullmatch(_RELEASE, v)]
    if not plain:
        raise CheckFailed(f"no X.Y.Z release of {FRONTEND_PACKAGE} among {versions[:10]}")
    return max(plain, key=_release_key)


def required_frontend_version(comfy: Path) -> str | None:
    """The front-end version ComfyUI's requirements.txt pins (``comfyui-frontend-package==X.Y.Z``)."""
    try:
        lines = (comfy / "requirements.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, version = line.split("#", 1)[0].strip().partition("==")
        if name.strip() == FRONTEND_PACKAGE and version.strip():
            return version.strip()
    return None


def pip_index_versions(python: str) -> str:
    """What ``python -m pip index versions comfyui-frontend-package`` prints (asks the package index)."""
    proc = subprocess.run([python, "-m", "pip", "index", "versions", FRONTEND_PACKAGE], capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        raise CheckFailed(f"pip index versions {FRONTEND_PACKAGE} failed: {proc.stderr.strip()[-1000:]}")
    return proc.stdout


def resolve_frontend_version(spec: str, comfy: Path, python: str, index=pip_index_versions) -> str:
    """--frontend's value as a version: ``latest`` (the newest release on the package index),
    ``required`` (the one ComfyUI's requirements.txt pins) or an X.Y.Z version as given."""
    import re

    if spec == "latest":
        return newest_release(parse_pip_index_versions(index(python)))
    if spec == "required":
        version = required_frontend_version(comfy)
        if version is None:
            raise CheckFailed(f"{comfy / 'requirements.txt'} pins no {FRONTEND_PACKAGE}==X.Y.Z")
        return version
    if re.fullmatch(_RELEASE, spec):
        return spec
    raise CheckFailed(f"--frontend {spec!r}: give latest, required or a version X.Y.Z")


def install_frontend(version: str, python: str, cache: Path = FRONTEND_CACHE) -> Path:
    """``comfyui-frontend-package==version`` in a folder of its own (installed once, then reused), to
    put first on ComfyUI's PYTHONPATH: ComfyUI serves ``comfyui_frontend_package/static`` of the
    package it imports (app/frontend_management.py, ``default_frontend_path``) and logs its version
    from the package's metadata, so the version under test wins over any installed in ComfyUI's
    environment, which stays untouched. The package is static files only, with no dependencies."""
    target = cache / version
    if (target / "comfyui_frontend_package" / "static" / "index.html").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=cache))
    log(f"installing {FRONTEND_PACKAGE}=={version} into {target}")
    try:
        proc = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(partial),
                               f"{FRONTEND_PACKAGE}=={version}"], capture_output=True, text=True, timeout=900)
        error = proc.stderr.strip()[-1500:] if proc.returncode != 0 else None
    except (OSError, subprocess.TimeoutExpired) as err:
        error = str(err)
    if error is not None:
        shutil.rmtree(partial, ignore_errors=True)
        raise CheckFailed(f"pip could not install {FRONTEND_PACKAGE}=={version}: {error}")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def served_frontend_version(log_text: str) -> str | None:
    """The front-end version ComfyUI logged at start ("ComfyUI frontend version: X.Y.Z")."""
    import re

    found = re.findall(r"ComfyUI frontend version: (\S+)", log_text)
    return found[-1] if found else None


# ----------------------------------------------------------------------------- the front-end (optional)


class DevTools:
    """A minimal Chrome DevTools Protocol client over a stdlib WebSocket (text frames only)."""

    def __init__(self, ws_url: str) -> None:
        import base64
        import urllib.parse

        u = urllib.parse.urlparse(ws_url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=120)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise CheckFailed(f"DevTools refused the WebSocket: {head[:200]!r}")
        self.next_id = 0

    def _send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
                                  if n < 65536 else bytes([0x80 | 127]) + n.to_bytes(8, "big"))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise CheckFailed("DevTools closed the connection")
            buf += chunk
        return buf

    def _receive(self) -> str:
        parts = []
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._exact(2), "big")
            elif n == 127:
                n = int.from_bytes(self._exact(8), "big")
            payload = self._exact(n)
            if b0 & 0x0F in (0x1, 0x0):
                parts.append(payload)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def call(self, method: str, **params):
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._receive())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise CheckFailed(f"DevTools {method}: {msg['error']}")
                return msg["result"]

    def evaluate(self, expression: str):
        r = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise CheckFailed(f"front-end script failed: {json.dumps(r['exceptionDetails'])[:1500]}")
        return r["result"].get("value")

    def screenshot(self, path: Path) -> None:
        import base64

        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))


_LOAD_JS = """(async () => {
  await app.loadGraphData(%s);
  await new Promise(r => setTimeout(r, 300));
  const unknown = app.graph._nodes.filter(n => !LiteGraph.registered_node_types[n.type]).map(n => n.type);
  const p = await app.graphToPrompt();
  app.canvas.ds.scale = 0.8; app.canvas.ds.offset = [520, 380]; app.graph.setDirtyCanvas(true, true);
  return {unknown, output: p.output, saved: app.graph.serialize().nodes.map(n => [n.id, n.widgets_values])};
})()"""


_TEMPLATES_JS = """(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  if (!document.querySelector('[data-testid="template-workflows-content"]')) {
    await app.extensionManager.command.execute('Comfy.BrowseTemplates');
    await sleep(2000);
  }
  const labels = %s;
  // the category list: a listbox of options in front-end 1.27, a column of role=button items in 1.58
  const options = [...document.querySelectorAll('[role="option"], [role="button"]')];
  const option = options.find(o => labels.includes(o.textContent.trim()));
  if (!option) return {error: 'no category ' + labels.join(' / ') + ' among ' +
                             options.map(o => o.textContent.trim()).filter(t => t && t.length < 40)};
  option.click();
  const cards = () => [...document.querySelectorAll('[data-testid^="template-workflow-"]')];
  const loaded = c => [...c.querySelectorAll('img')].every(im => im.complete && im.naturalWidth > 0);
  for (let i = 0; i < 40 && !cards().length; i++) await sleep(250);
  // A card's thumbnail is a lazy image: fetched when the card scrolls into view and dropped when it
  // leaves it, so each card is scrolled into view in turn and its picture measured there.
  const seen = {};
  for (const c of cards()) {
    c.scrollIntoView({block: 'nearest'});
    for (let i = 0; i < 40 && !loaded(c); i++) await sleep(250);
    seen[c.dataset.testid] = [...c.querySelectorAll('img')].map(im => im.naturalWidth);
  }
  if (cards().length) cards()[0].scrollIntoView({block: 'nearest'});
  for (let i = 0; i < 20 && !cards().filter(c => c.getBoundingClientRect().bottom < innerHeight).every(loaded); i++)
    await sleep(250);
  return {category: option.textContent.trim(), cards: cards().map(c => {
    const h3 = c.querySelector('h3');
    return {name: c.dataset.testid.slice('template-workflow-'.length), title: h3 && h3.textContent.trim(),
            clamped: !!h3 && h3.scrollHeight > h3.clientHeight + 1,
            images: seen[c.dataset.testid] || [], fallbackIcon: !!c.querySelector('.pi-file')};
  })};
})()"""


_QUEUE_JS = """(async () => {
  const settings = %s;
  await app.loadGraphData(%s);
  await new Promise(r => setTimeout(r, 300));
  for (const n of app.graph._nodes)
    for (const w of n.widgets || [])
      if (settings[n.type] && w.name in settings[n.type]) w.value = settings[n.type][w.name];
  // the test id is on the button in 1.58, on the split button's wrapper in 1.27 (its first button queues)
  const holder = document.querySelector('[data-testid="queue-button"]');
  const button = holder && (holder.tagName === 'BUTTON' ? holder : holder.querySelector('button'));
  if (!button) return {error: 'no queue button'};
  button.click();
  return {label: button.textContent.trim()};
})()"""


def check_ui_run(dt: DevTools, url: str, base: Path, name: str, checkpoint: str, steps: int, seconds: float,
                 timeout: float, log_path: Path) -> None:
    """A run queued from the UI: load the template, lower steps and length in its widgets (as a user
    would), click the queue button; the prompt the front-end sent must run to the MP4, and the front-end
    must hold that MP4 as Video Combine's output (what its preview and the queue panel show)."""
    ui = json.loads((ROOT / "workflows" / f"{name}.json").read_text(encoding="utf-8"))
    settings = {"DabFusionModelLoader": {"checkpoint": checkpoint},
                "DabFusionSampler": {"steps": steps, "length": seconds},
                "DabFusionLoadMusic": {"duration": seconds}}
    _, before = http_json(f"{url}/history")
    res = dt.evaluate(_QUEUE_JS % (json.dumps(settings), json.dumps(ui)))
    if res.get("error"):
        raise CheckFailed(f"UI run: {res['error']}")
    started, deadline = time.time(), time.time() + timeout
    entry = None
    while time.time() < deadline and entry is None:
        time.sleep(1.0)
        _, history = http_json(f"{url}/history")
        _, queue = http_json(f"{url}/queue")
        busy = (queue or {}).get("queue_running") or (queue or {}).get("queue_pending")
        if time.time() - started > 30 and not busy and not set(history or {}) - set(before or {}):
            raise CheckFailed(f"the front-end's queue button ({res['label']!r}) queued nothing in 30 s")
        for pid, item in (history or {}).items():
            done = item.get("status", {}).get("completed") or item.get("status", {}).get("status_str") == "error"
            if pid not in (before or {}) and done:
                entry = item
    if entry is None:
        raise CheckFailed(f"the front-end's queue button ({res['label']!r}) queued nothing that finished within "
                          f"{timeout:.0f} s; see {log_path}")
    if entry["status"].get("status_str") == "error":
        messages = [m for m in entry["status"].get("messages", []) if m[0] == "execution_error"]
        raise CheckFailed(f"the workflow queued from the UI failed: {json.dumps(messages)[:3000]}")
    api = entry["prompt"][2]  # [number, prompt_id, prompt, extra_data, outputs_to_execute]
    if "workflow" not in entry["prompt"][3].get("extra_pnginfo", {}):
        raise CheckFailed("the front-end sent the prompt without its workflow (extra_pnginfo)")
    path = check_video(entry, api, base)
    combine = next(nid for nid, n in api.items() if n["class_type"] == "DabFusionVideoCombine")
    for _ in range(30):
        shown = dt.evaluate("(() => { const o = (app.nodeOutputs || {})[%s]; "
                            "return o && o.images ? o.images.map(i => i.filename) : null; })()" % json.dumps(combine))
        if shown and path.name in shown:
            break
        time.sleep(0.5)
    else:
        raise CheckFailed(f"the front-end does not show {path.name} as Video Combine's output (it has {shown})")
    dt.screenshot(base / "ui_run.png")
    log(f"front-end: {name} queued with the UI's {res['label']!r} button ran; Video Combine shows {path.name} "
        f"in the UI (screenshot {base / 'ui_run.png'})")


def check_template_browser(dt: DevTools, base: Path) -> None:
    """The pack's cards in the front-end's template browser: whole titles, thumbnails that load."""
    labels = [PACK_DIR_NAME, pack_category_title()]
    res = dt.evaluate(_TEMPLATES_JS % json.dumps(labels))
    if res.get("error"):
        raise CheckFailed(f"template browser: {res['error']}")
    expected = {p.stem for p in (ROOT / "workflows").glob("*.json")}
    cards = {c["name"]: c for c in res["cards"]}
    if set(cards) != expected:
        raise CheckFailed(f"template browser, category {res['category']!r}: cards {sorted(cards)}, expected {sorted(expected)}")
    for name, card in sorted(cards.items()):
        if card["title"] != name or card["clamped"]:
            raise CheckFailed(f"card {name!r}: title {card['title']!r} (cut off: {card['clamped']})")
        if not card["images"] or min(card["images"]) == 0 or card["fallbackIcon"]:
            raise CheckFailed(f"card {name!r}: the thumbnail did not load ({card})")
    dt.screenshot(base / "template_browser.png")
    log(f"front-end: category {res['category']!r} shows {len(cards)} cards, whole titles, thumbnails loaded "
        f"(screenshot {base / 'template_browser.png'})")


def pack_category_title() -> str:
    """The category name the pack's locales/en/main.json gives its folder name (else the folder name)."""
    try:
        data = json.loads((ROOT / "locales" / "en" / "main.json").read_text(encoding="utf-8"))
        return data["templateWorkflows"]["category"][PACK_DIR_NAME]
    except (OSError, KeyError, ValueError):
        return PACK_DIR_NAME


def declared_inputs(info: dict, prompt: dict) -> dict:
    """An API prompt's nodes, each with only the inputs its class declares in /object_info: what a
    front-end sends beside them (front-end 1.27 sends Preview Any's read-only "preview" text box, empty;
    1.58 does not) is dropped by ComfyUI (execution.get_input_data), so it is not part of the graph."""
    out = {}
    for nid, node in prompt.items():
        spec = info.get(node["class_type"], {}).get("input", {})
        names = set(spec.get("required", {})) | set(spec.get("optional", {}))
        out[nid] = {"class_type": node["class_type"],
                    "inputs": {k: v for k, v in node["inputs"].items() if k in names or not names}}
    return out


def check_frontend(url: str, browser: str, base: Path, expect_version: str | None = None,
                   ui_run: dict | None = None, info: dict | None = None) -> str:
    """The browser checks of step 5; ``ui_run``: check_ui_run's arguments (a run from the queue button).
    Returns the front-end version the page reports."""
    port = free_port()
    # headless on a machine with no network: no background, component-update or sync traffic
    proc = subprocess.Popen([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             "--no-first-run", "--window-size=1600,1300",
                             f"--remote-debugging-port={port}", f"--user-data-dir={base / 'browser'}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        tabs = None
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5) as r:
                    tabs = json.loads(r.read())
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        if not tabs:
            raise CheckFailed(f"{browser} did not start its DevTools endpoint")
        dt = DevTools(next(t for t in tabs if t["type"] == "page")["webSocketDebuggerUrl"])
        dt.call("Page.enable")
        dt.call("Page.navigate", url=url)
        for _ in range(120):
            try:
                if dt.evaluate("!!(window.app && window.app.graph && window.LiteGraph)"):
                    break
            except CheckFailed:
                pass
            time.sleep(1.0)
        else:
            raise CheckFailed("the front-end did not start in the browser")
        version = dt.evaluate("window.__COMFYUI_FRONTEND_VERSION__ || null")
        log(f"front-end {version} in {browser}")
        if expect_version and version != expect_version:
            raise CheckFailed(f"the page runs front-end {version}, not {expect_version}")
        time.sleep(3.0)  # first start opens the template browser; the pack's templates must be in it
        check_template_browser(dt, base)
        dt.evaluate("(() => { document.querySelectorAll('.p-dialog-close-button, button[aria-label=\"Close dialog\"]')"
                    ".forEach(b => b.click()); return 1; })()")
        for path in sorted((ROOT / "workflows").glob("*.json")):
            ui = json.loads(path.read_text())
            api = json.loads((ROOT / "workflows" / "api" / path.name).read_text())
            res = dt.evaluate(_LOAD_JS % json.dumps(ui))
            if res["unknown"]:
                raise CheckFailed(f"{path.name}: the front-end does not know {res['unknown']}")
            got, want = declared_inputs(info or {}, res["output"]), declared_inputs(info or {}, api)
            if got != want:
                diff = [k for k in set(got) | set(want) if got.get(k) != want.get(k)]
                raise CheckFailed(f"{path.name}: the front-end's prompt differs from workflows/api at nodes {diff}: "
                                  f"{json.dumps({k: got.get(k) for k in diff})[:1500]}")
            # a node without widgets: [] in our files, left out by newer front-ends (1.58) when they save
            original = {n["id"]: n.get("widgets_values") or [] for n in ui["nodes"]}
            changed = [i for i, w in res["saved"] if original.get(i) != (w or [])]
            if changed:
                raise CheckFailed(f"{path.name}: re-saving changes the widget values of nodes {changed}")
            time.sleep(0.5)
            dt.screenshot(base / f"{path.stem}.png")
            log(f"front-end: {path.name} loads, all node types known, graphToPrompt == workflows/api/{path.name}")
        if ui_run:
            check_ui_run(dt, url, base, **ui_run)
        return version
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("comfyui", type=Path, help="path of a ComfyUI checkout (the folder with main.py)")
    p.add_argument("--python", default=sys.executable, help="Python of ComfyUI's environment (default: this one)")
    p.add_argument("--checkpoint", type=Path, default=None, help="model folder to use (default: the demo model)")
    p.add_argument("--workflows", nargs="+", default=sorted(p.stem for p in (ROOT / "workflows").glob("*.json")),
                   help="templates to run (file names without .json under workflows/api/; default: all)")
    p.add_argument("--steps", type=int, default=4, help="sampler steps (lowered for a quick CPU run)")
    p.add_argument("--seconds", type=float, default=1.0, help="seconds of music, i.e. video length")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--start-timeout", type=float, default=300.0)
    p.add_argument("--run-timeout", type=float, default=900.0)
    p.add_argument("--copy", action="store_true", help="copy the pack instead of linking it")
    p.add_argument("--browser", default=None,
                   help="a Chromium/Chrome executable: also check the workflows in the real front-end")
    p.add_argument("--frontend", default=None, metavar="latest|required|X.Y.Z",
                   help=f"serve this {FRONTEND_PACKAGE} (latest: the newest on the package index; required: the "
                        "one ComfyUI's requirements.txt pins), installed once into its own folder under "
                        f"{FRONTEND_CACHE} and put first on ComfyUI's PYTHONPATH (default: the one in --python's "
                        "environment)")
    p.add_argument("--ui-run", default="Dance Any Beat - image and music", metavar="TEMPLATE",
                   help="with --browser, the template also queued from the front-end's queue button ('' = none)")
    p.add_argument("--keep", action="store_true", help="keep the base directory (log, output)")
    p.add_argument("--check-install", choices=("comfyui", "fresh"), default=None,
                   help="first prove the install with scripts/check_install.py: 'comfyui' installs "
                        "requirements.txt into --python's environment (changing it), 'fresh' into a new numpy-2 "
                        "venv with ComfyUI's requirements, which then runs the server (default: skip; minutes)")
    args = p.parse_args(argv)

    comfy = args.comfyui.resolve()
    if not (comfy / "main.py").is_file():
        print(f"error: {comfy} has no main.py: give the ComfyUI checkout", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="dab_comfy_check_"))
    log_path = base / "comfyui.log"
    proc = None
    try:
        checkpoint = prepare_base(base, args.checkpoint, args.copy)
        python = args.python
        if args.check_install:
            python = run_check_install(args.check_install, comfy, args.python, base)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "YOLO_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        frontend = None
        if args.frontend:
            frontend = resolve_frontend_version(args.frontend, comfy, python)
            folder = install_frontend(frontend, python)
            env["PYTHONPATH"] = os.pathsep.join([str(folder)] + [x for x in [env.get("PYTHONPATH")] if x])
            log(f"front-end: {FRONTEND_PACKAGE} {frontend} (--frontend {args.frontend}; ComfyUI's requirements.txt "
                f"pins {required_frontend_version(comfy)}) from {folder}")
        port = args.port or free_port()
        cmd = server_command(comfy, python, port, base)
        log("starting: " + " ".join(cmd))
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=str(comfy), stdout=out, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        started = time.time()
        info = wait_for_server(url, proc, log_path, args.start_timeout)
        served = served_frontend_version(log_path.read_text(errors="replace"))
        log(f"server up in {time.time() - started:.0f} s, serving front-end {served}")
        if frontend and served != frontend:
            raise CheckFailed(f"ComfyUI serves front-end {served}, not {frontend}; see {log_path}")
        check_import(info, log_path)
        check_inputs(info, base)
        check_templates(url)
        if args.browser:
            ui_run = None
            if args.ui_run:
                ui_run = {"name": args.ui_run, "checkpoint": checkpoint, "steps": args.steps,
                          "seconds": args.seconds, "timeout": args.run_timeout, "log_path": log_path}
            check_frontend(url, args.browser, base, frontend or served, ui_run, info)
        save_video = "SaveVideo" in info
        for name in args.workflows:
            api, ui = make_prompt(name, checkpoint, args.steps, args.seconds, save_video)
            started = time.time()
            entry = run_prompt(url, api, ui, args.run_timeout, log_path)
            log(f"{name} ran in {time.time() - started:.0f} s")
            check_video(entry, api, base)
            if save_video:  # our VIDEO output works with core Save Video
                check_video(entry, api, base, "SaveVideo")
            check_previews(entry, api, base)
        log("ALL CHECKS PASSED" + (f" (front-end {served})" if args.browser else ""))
        return 0
    except CheckFailed as err:
        log(f"FAILED: {err}")
        return 1
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if args.keep:
            log(f"kept {base} (server log: {log_path})")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
