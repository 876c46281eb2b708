"""The Kafka jars from Maven Central: resolved once with Maven into the cache, by the version pinned in
deploy/local/pom.xml (`kafka.version`, the only place to change it). See kafka_server.py for the layout of the cache."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

from . import paths
from .procs import StackError, say

MAVEN_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
MARKER = "fetched.json"
Progress = Callable[[str], None]


def kafka_version() -> str:
    """The Kafka version pinned in deploy/local/pom.xml."""
    root = ET.parse(paths.POM).getroot()
    version = root.findtext("m:properties/m:kafka.version", namespaces=MAVEN_NS)
    if not version:
        raise StackError(f"{paths.POM} has no <properties><kafka.version>")
    return version.strip()


def version_dir(version: str | None = None) -> Path:
    return paths.cache_dir() / "kafka" / (version or kafka_version())


def libs_dir(version: str | None = None) -> Path:
    """Where the broker's jars are (or will be) for `version` (default: the pinned one)."""
    return version_dir(version) / "libs"


def _pom_digest() -> str:
    return hashlib.sha256(paths.POM.read_bytes()).hexdigest()


def jars_ready(version: str | None = None) -> bool:
    """True if the jars of `version` were fetched completely with the current POM."""
    vdir = version_dir(version)
    try:
        marker = json.loads((vdir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("pom_sha256") != _pom_digest():
        return False
    libs = vdir / "libs"
    return bool(marker.get("jars")) and all((libs / jar).is_file() for jar in marker["jars"])


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def fetch(progress: Progress = say) -> Path:
    """Resolve the pinned Kafka and its runtime from Maven Central into the cache (no-op once done).

    Returns the libs directory, usable as `java -cp '<libs>/*'`.
    """
    version = kafka_version()
    vdir = version_dir(version)
    libs = vdir / "libs"
    if jars_ready(version):
        return libs
    with file_lock(vdir / ".lock"):  # a concurrent fetch (make + pytest) waits for the first one
        if jars_ready(version):
            return libs
        mvn = shutil.which("mvn")
        if not mvn:
            raise StackError("Maven (`mvn`) is needed to fetch the Kafka jars: apt-get install maven")
        if not shutil.which("java"):
            raise StackError("Java 17+ (`java`) is needed to run Kafka: apt-get install openjdk-17-jre-headless")
        progress(f"resolving Kafka {version} jars from Maven Central (first time only)...")
        t0 = time.monotonic()
        partial = vdir / f"libs.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(paths.POM),
               "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={partial}"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            out = (result.stdout + result.stderr).strip().splitlines()
            raise StackError(f"Maven could not resolve Kafka {version} (exit {result.returncode}):\n"
                             + "\n".join(out[-30:]) + f"\ncommand: {' '.join(cmd)}")
        jars = sorted(p.name for p in partial.glob("*.jar"))
        if f"kafka_2.13-{version}.jar" not in jars:
            shutil.rmtree(partial, ignore_errors=True)
            raise StackError(f"Maven finished but kafka_2.13-{version}.jar is missing from {partial}")
        check = subprocess.run(["java", "-cp", classpath(partial, jars), "kafka.Kafka", "--version"],
                               capture_output=True, text=True, timeout=120)
        if check.returncode != 0 or version not in check.stdout:
            shutil.rmtree(partial, ignore_errors=True)
            raise StackError(f"the fetched jars do not run `kafka.Kafka --version`:\n{check.stdout}{check.stderr}")
        shutil.rmtree(libs, ignore_errors=True)
        os.replace(partial, libs)
        marker = {"kafka_version": version, "pom_sha256": _pom_digest(), "jars": jars,
                  "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (vdir / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        progress(f"Kafka {version}: {len(jars)} jars in {libs} ({time.monotonic() - t0:.1f}s)")
    return libs


def classpath(libs: Path, jars: list[str]) -> str:
    # explicit and sorted (not 'libs/*', which the JVM expands in directory order) so that the classpath
    # recorded in the CDS archive always matches
    return os.pathsep.join(str(libs / jar) for jar in sorted(jars))
