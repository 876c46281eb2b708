"""Where the launcher finds its inputs (repo root, the Maven project) and keeps its outputs (jar cache, state), and
the development variables it reads (SLAMON_CACHE_DIR, SLAMON_STACK_DIR, SLAMON_STACK_SECURITY, SLAMON_KAFKA_JVM_OPTS,
SLAMON_KAFKA_CDS, SLAMON_KAFKA_START_TIMEOUT): the launcher is development
tooling with its own variables, read here and nowhere else (the product's settings are `monitor.settings`)."""

from __future__ import annotations

import os
from pathlib import Path

# monitor/localstack/paths.py -> the repository root (the package is installed editable: `pip install -e`).
REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy" / "local"
POM = DEPLOY_DIR / "pom.xml"
LOG4J2_CONFIG = DEPLOY_DIR / "log4j2.properties"


def cache_dir() -> Path:
    """Root of downloaded artefacts: `$SLAMON_CACHE_DIR`, else `.cache/` at the repo root (git-ignored)."""
    env = os.environ.get("SLAMON_CACHE_DIR")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / ".cache"


def default_stack_dir() -> Path:
    """State, logs and data of the running stack: `$SLAMON_STACK_DIR`, else `.stack/` at the repo root."""
    env = os.environ.get("SLAMON_STACK_DIR")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / ".stack"


def stack_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """An explicit state dir wins over the environment and the default."""
    return Path(path).expanduser().resolve() if path else default_stack_dir()


def kafka_jvm_opts() -> list[str] | None:
    """`$SLAMON_KAFKA_JVM_OPTS` split on spaces: replaces the launcher's JVM options (None: use the defaults)."""
    env = os.environ.get("SLAMON_KAFKA_JVM_OPTS")
    return env.split() if env else None


def kafka_cds_enabled() -> bool:
    """Class-data sharing for faster broker starts, unless `$SLAMON_KAFKA_CDS=0` or custom JVM options."""
    return os.environ.get("SLAMON_KAFKA_CDS", "1") != "0" and kafka_jvm_opts() is None


def kafka_start_timeout() -> float:
    """Seconds to wait for the broker to answer: `$SLAMON_KAFKA_START_TIMEOUT`, else 120."""
    return float(os.environ.get("SLAMON_KAFKA_START_TIMEOUT", "120"))


def stack_security() -> str:
    """`$SLAMON_STACK_SECURITY`: "sasl_ssl" or "mtls" for a secured stack (security.py), "" (also `none`) for the
    plaintext one. Checked by security.Security."""
    value = os.environ.get("SLAMON_STACK_SECURITY", "").strip().lower()
    return "" if value in ("", "none", "plaintext") else value
