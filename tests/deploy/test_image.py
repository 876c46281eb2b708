"""Reproducible installs and images: `slamon --version` is the package's version; requirements.lock (runtime, used by
the Dockerfile) and requirements-test.lock (plus the test extra, used by `make install`) pin every dependency of
pyproject.toml to one version with hashes, agree with each other, name the command (`make lock`) that made them,
and are what this environment has installed; the Dockerfile installs the lock with --require-hashes on a base
image pinned by tag (and digest, when given)."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import monitor

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME_LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"
DOCKERFILE = (ROOT / "Dockerfile").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()


# ------------------------------------------------------------------------------------------ version


def test_slamon_version_is_the_package_version():
    script = Path(sys.executable).with_name("slamon")  # the console script pip installed
    assert script.is_file(), f"{script}: run make install"
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    version = importlib.metadata.version("slamon")
    assert out.stdout.strip() == f"slamon {version}"
    assert version == PYPROJECT["project"]["version"] == monitor.__version__


def test_the_charts_app_version_is_the_package_version():
    chart = (ROOT / "deploy" / "helm" / "slamon" / "Chart.yaml").read_text()
    assert re.search(r'^appVersion: "?([^"\n]+)"?$', chart, re.M).group(1) == PYPROJECT["project"]["version"]


# ------------------------------------------------------------------------------------------ locks


def parse_lock(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """canonical name -> (version, hashes) of a pip requirements file with hashes; every entry must be pinned to
    one version (==) and carry at least one sha256 hash."""
    text = path.read_text()
    entries = {}
    # an entry is its first line plus backslash continuations; comments and blank lines separate entries
    for block in re.split(r"(?<!\\)\n", text):
        line = block.strip()
        if not line or line.startswith("#"):
            continue
        head, *options = [part.strip() for part in line.replace("\\\n", " ").split(" --")]
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", head)
        assert m, f"{path.name}: not pinned to one version: {head!r}"
        hashes = frozenset(o.removeprefix("hash=") for o in options if o.startswith("hash=sha256:"))
        assert hashes and len(hashes) == len(options), f"{path.name}: {head}: hashes {options}"
        name = canonicalize_name(m.group(1))
        assert name not in entries, f"{path.name}: {name} twice"
        entries[name] = (m.group(2), hashes)
    return entries


def requirements(group: list[str]) -> list[Requirement]:
    return [Requirement(r) for r in group]


def with_extras(reqs: list[Requirement]) -> list[Requirement]:
    """The requirements plus what their extras add (e.g. faust-streaming[rocksdict] -> rocksdict), read from the
    installed distributions' metadata."""
    out = list(reqs)
    for req in reqs:
        for extra in req.extras:
            for line in importlib.metadata.requires(req.name) or []:
                dep = Requirement(line)
                if dep.marker and dep.marker.evaluate({"extra": extra}) and not Marker(
                        str(dep.marker)).evaluate({"extra": ""}):
                    out.append(dep)
    return out


def check_pinned(reqs: list[Requirement], lock: dict[str, tuple[str, frozenset[str]]], where: str) -> None:
    for req in reqs:
        name = canonicalize_name(req.name)
        assert name in lock, f"{where}: {req} is not pinned (run make lock)"
        version = lock[name][0]
        assert req.specifier.contains(version, prereleases=True), f"{where}: {name}=={version} does not satisfy {req}"


RUNTIME = requirements(PYPROJECT["project"]["dependencies"])
TEST_EXTRA = requirements(PYPROJECT["project"]["optional-dependencies"]["test"])


def test_every_runtime_dependency_is_pinned_in_requirements_lock():
    reqs = with_extras(RUNTIME)
    assert "rocksdict" in {canonicalize_name(r.name) for r in reqs}
    check_pinned(reqs, parse_lock(RUNTIME_LOCK), RUNTIME_LOCK.name)


def test_every_runtime_and_test_dependency_is_pinned_in_requirements_test_lock():
    check_pinned(with_extras(RUNTIME + TEST_EXTRA), parse_lock(TEST_LOCK), TEST_LOCK.name)
    assert "kubernetes-validate" in parse_lock(TEST_LOCK)


def test_the_test_lock_has_the_images_versions():
    """What the tests run on is what the image ships: the runtime lock's pins, with the same hashes."""
    runtime, test = parse_lock(RUNTIME_LOCK), parse_lock(TEST_LOCK)
    differ = {name: (pin, test.get(name)) for name, pin in runtime.items() if test.get(name) != pin}
    assert not differ


def test_the_lock_files_say_how_they_were_made_and_the_makefile_makes_them_so():
    opts = re.search(r"^LOCK_OPTS := (.+)$", MAKEFILE, re.M).group(1).strip()
    recipe = re.search(r"^lock:\n((?:\t.*\n)+)", MAKEFILE, re.M).group(1)
    for lock, extra in ((RUNTIME_LOCK, ""), (TEST_LOCK, "--extra test ")):
        constraint = " -c requirements.lock" if lock == TEST_LOCK else ""
        command = f"uv pip compile pyproject.toml {extra}{opts}{constraint} -o {lock.name}"
        header = lock.read_text().splitlines()[:2]
        assert header == ["# This file was autogenerated by uv via the following command:", f"#    {command}"]
        made = f"$(UV) pip compile pyproject.toml {extra}$(LOCK_OPTS) $(LOCK_ARGS){constraint} -o {lock.name}"
        assert made in recipe
    # the locks are for the image's Python
    assert "--python-version 3.11 " in opts + " " and re.search(r"^FROM python:3\.11\.", DOCKERFILE, re.M)


def test_make_install_installs_the_test_lock():
    recipe = re.search(r"^\$\(STAMP\): (.*)\n((?:\t.*\n)+)", MAKEFILE, re.M)
    assert {"requirements.lock", "requirements-test.lock"} <= set(recipe.group(1).split())
    assert "pip install --quiet --require-hashes -r requirements-test.lock" in recipe.group(2)
    assert "pip install --quiet --no-deps -e ." in recipe.group(2)
    assert re.search(r"^install: .*\bhelm\b.*\bhelm-crds\b", MAKEFILE, re.M)


def test_this_environment_has_the_locked_versions():
    """make install installed requirements-test.lock (a stale .venv: run make install)."""
    wrong = {}
    for name, (version, _) in parse_lock(TEST_LOCK).items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"locked vs installed: {wrong}"


# ------------------------------------------------------------------------------------------ image


def test_the_dockerfile_installs_the_lock_with_hashes_and_the_package_without_resolving():
    lines = [line.strip() for line in DOCKERFILE.splitlines()]
    copy = lines.index("COPY requirements.lock ./")
    install = next(i for i, line in enumerate(lines) if "pip install --require-hashes -r requirements.lock" in line)
    # (written `pip install . --no-deps`: tests/deploy/test_compose.py looks for "pip install .")
    package = next(i for i, line in enumerate(lines) if re.search(r"pip install (--no-deps \.|\. --no-deps)", line))
    assert copy < install < package
    # nothing else is installed, or resolved
    installs = re.findall(r"pip install [^&\n\\]*", DOCKERFILE)
    assert len(installs) == 2 and all("--require-hashes" in i or "--no-deps" in i for i in installs), installs
    # the build context keeps the lock
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
               if p.strip() and not p.startswith("#")]
    assert not [p for p in ignored if fnmatch.fnmatch("requirements.lock", p)]


def test_the_base_image_is_pinned_by_tag_and_digest_or_takes_the_digest_as_a_build_arg():
    (line,) = [line for line in DOCKERFILE.splitlines() if line.startswith("FROM ")]
    m = re.fullmatch(r"FROM python:(3\.11\.\d+)-slim-bookworm(@sha256:[0-9a-f]{64}|\$\{BASE_DIGEST\})", line)
    assert m, line
    if m.group(2) == "${BASE_DIGEST}":
        assert re.search(r'^ARG BASE_DIGEST=""$', DOCKERFILE, re.M)
        assert "docker buildx imagetools inspect python:" + m.group(1) + "-slim-bookworm" in DOCKERFILE


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, TEST_LOCK], ids=lambda p: p.name)
def test_the_lock_parser_rejects_unpinned_or_unhashed_entries(lock, tmp_path):
    text = lock.read_text()
    first = re.search(r"^([a-z0-9-]+)==\S+ \\\n", text, re.M)
    unpinned = tmp_path / "unpinned.lock"
    unpinned.write_text(text.replace(first.group(0), first.group(1) + ">=0 \\\n", 1))
    with pytest.raises(AssertionError, match="not pinned"):
        parse_lock(unpinned)
    unhashed = tmp_path / "unhashed.lock"
    unhashed.write_text(text + "\nextra-package==1.0\n")
    with pytest.raises(AssertionError, match="hashes"):
        parse_lock(unhashed)
