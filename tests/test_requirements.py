"""requirements.txt installs into a ComfyUI that runs numpy 2 without downgrading anything.

The rule (issue 14): no torch / torchvision / torchaudio / numpy line (they are ComfyUI's), only
lower bounds (a cap or a pin can force a downgrade of a package other packs share), nothing
training-only, no package known to cap numpy below 2 (laion-clap), and — read from the installed
distributions' metadata, requirements and everything they pull in, no network — no dependency
whose Requires-Dist excludes a numpy 2 release. scripts/check_install.py proves the same with a
real install into a fresh numpy-2 venv (or ComfyUI's own).
"""

from __future__ import annotations

import importlib.metadata as md
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
HOST = {"torch", "torchvision", "torchaudio", "numpy"}  # come from ComfyUI, never named
# Known to cap numpy below 2 (checked against their metadata wherever they are installed).
CAPS_NUMPY = {"laion-clap": "laion-clap 1.1.x requires numpy<2.0.0 (and pulls wandb, webdataset, wget)"}
# numpy 2 releases ComfyUI installs run: every dependency must admit all of them
NUMPY_2 = [Version(v) for v in ("2.0.0", "2.1.3", "2.2.6", "2.3.5", "2.4.6")]


def requirements(path: Path = ROOT / "requirements.txt") -> list[Requirement]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(Requirement(line))
    return out


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def numpy_problem(spec: SpecifierSet) -> str | None:
    """Why a numpy specifier breaks a numpy-2 install (None: it admits every numpy 2 release)."""
    refused = [str(v) for v in NUMPY_2 if not spec.contains(v, prereleases=True)]
    return f"numpy{spec} refuses numpy {', '.join(refused)}" if refused else None


def applies(req: Requirement, extras: set[str]) -> bool:
    """Whether a Requires-Dist line holds in this environment for the requested extras."""
    if req.marker is None:
        return True
    env = default_environment()
    return any(req.marker.evaluate({**env, "extra": e}) for e in (extras or {""}))


def numpy_caps(reqs: list[Requirement]) -> tuple[list[str], list[str]]:
    """Walk the installed metadata of ``reqs`` and all they pull in.

    Returns (problems, not installed): a line per dependency whose Requires-Dist excludes a
    numpy 2 release, with the chain that pulls it in; requirements not installed here.
    """
    problems, missing = [], []
    seen: set[str] = set()
    todo = [(r, (canonicalize_name(r.name),)) for r in reqs]
    while todo:
        req, chain = todo.pop()
        name = canonicalize_name(req.name)
        if name == "numpy":
            why = numpy_problem(req.specifier)
            if why:
                problems.append(" -> ".join(chain[:-1]) + f": {why}")
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            if len(chain) == 1:
                missing.append(name)
            continue
        label = f"{name} {dist.version}"
        for line in dist.requires or []:
            dep = Requirement(line)
            if applies(dep, set(req.extras)):
                todo.append((dep, chain[:-1] + (label, canonicalize_name(dep.name))))
    return problems, missing


# ----------------------------------------------------------------------------- the rule


def test_requirements_leave_comfyuis_packages_alone_and_only_set_floors():
    reqs = requirements()
    names = {canonicalize_name(r.name) for r in reqs}
    assert not names & HOST, f"requirements.txt names ComfyUI's own packages: {sorted(names & HOST)}"
    for r in reqs:
        ops = {s.operator for s in r.specifier}
        assert ops <= {">=", "!="}, f"{r}: only lower bounds (>=) and exclusions (!=), no caps or pins"
        assert r.marker is None or "extra" not in str(r.marker), r


def test_no_package_known_to_cap_numpy_below_2():
    names = {canonicalize_name(r.name) for r in requirements()}
    deps = {canonicalize_name(Requirement(d).name) for d in pyproject()["dependencies"]}
    for bad, why in CAPS_NUMPY.items():
        assert bad not in names, f"requirements.txt: {why}"
        assert bad not in deps, f"pyproject.toml dependencies: {why}"


def test_no_training_only_packages():
    proj = pyproject()
    core = {canonicalize_name(Requirement(d).name) for d in proj["dependencies"]}
    extras = {canonicalize_name(Requirement(d).name)
              for group in proj["optional-dependencies"].values() for d in group}
    names = {canonicalize_name(r.name) for r in requirements()}
    assert not names & (extras - core), f"training/test-only packages in requirements.txt: {names & (extras - core)}"


def test_requirements_are_pyprojects_dependencies_less_comfyuis():
    """One list in two files: the registry reads pyproject.toml, ComfyUI-Manager requirements.txt."""
    deps = {canonicalize_name(r.name): r.specifier
            for r in map(Requirement, pyproject()["dependencies"])}
    reqs = {canonicalize_name(r.name): r.specifier for r in requirements()}
    assert reqs == {n: s for n, s in deps.items() if n not in HOST}
    assert "laion" in pyproject()["optional-dependencies"]  # laion-clap stays an opt-in extra


def test_installed_metadata_admits_numpy_2():
    """Everything requirements.txt pulls in (as installed here) admits every numpy 2 release."""
    problems, missing = numpy_caps(requirements())
    assert not missing, f"not installed, so their metadata cannot be checked: {missing} (make install)"
    assert not problems, "dependencies that would downgrade numpy:\n  " + "\n  ".join(problems)


# ----------------------------------------------------------------------------- the checker can fail


def test_numpy_rule_on_real_specifiers():
    assert numpy_problem(SpecifierSet("<2.0.0,>=1.23.5"))              # laion-clap 1.1.7
    assert numpy_problem(SpecifierSet("<=2.1.1,>=1.23.0"))             # ultralytics 8.3.100-8.3.110
    assert numpy_problem(SpecifierSet("<2.3.0,>=2"))                   # opencv-python 4.12.0.88
    assert numpy_problem(SpecifierSet("<2.6,>=1.22")) is None           # numba 0.68
    assert numpy_problem(SpecifierSet(">=2")) is None                   # opencv-python 5
    assert numpy_problem(SpecifierSet("")) is None
    # markers: a cap for old Pythons or an extra does not apply here
    assert not applies(Requirement('numpy<2.0; python_version < "3.9"'), set())
    assert not applies(Requirement('numpy==1.23.5; extra == "export"'), set())
    assert applies(Requirement('numpy==1.23.5; extra == "export"'), {"export"})


@pytest.mark.skipif(not any(True for _ in md.distributions(name="laion-clap")),
                    reason="laion-clap is not installed here")
def test_the_walk_finds_laion_claps_cap_in_its_installed_metadata():
    """Adding laion-clap back to requirements.txt fails the metadata walk, not only the deny list."""
    problems, missing = numpy_caps([Requirement("laion-clap>=1.1.4")])
    assert not missing
    assert any(p.startswith("laion-clap") and "refuses numpy 2.0.0" in p for p in problems), problems
