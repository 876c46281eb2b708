"""A policy directory with recommended limits (`slamon recommend --out DIR`, CONTRACTS.md section 10): every file
of the source directory, the recommended limits put in, each changed policy's `version` increased by one, the
rest of each document kept (YAML comments are not: a changed file is written anew, with a header saying so).

Without `--by-segment` a recommendation replaces a node's own limits. A segment override that gives only one of
the two limits inherits the other from the node; where the node's new limit would leave that segment with a
tolerance below its commitment, the override is given its old value, so the set stays valid.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..core.durations import DurationError, format_duration, parse_duration
from ..core.instants import US
from ..core.policies import PolicySet, load_policy_dir
from ..core.vocabulary import DEFAULT_SEGMENT, ORDER_NODE


class OutError(Exception):
    """The directory cannot be written (exists and is not empty, or an OS error)."""


def _limit_spec(doc: dict[str, Any], node: str, segment: str | None) -> dict[str, Any]:
    """The mapping of `doc` that holds the limits to replace (created for a segment that has none)."""
    if node == ORDER_NODE:
        return doc["order"]
    segments = doc.get("segments") or {}
    if segment is not None and (segment != DEFAULT_SEGMENT or node in (segments.get(segment) or {})):
        doc["segments"] = segments
        overrides = segments.setdefault(segment, {}) or {}
        segments[segment] = overrides
        return overrides.setdefault(node, {})
    return doc["nodes"][node]


def _keep_segments_valid(doc: dict[str, Any], original: Any, written: set[tuple[str, str]]) -> None:
    """Give a segment override its old limits where the node's new ones would leave it with T < C."""
    nodes = doc.get("nodes") or {}
    for segment, overrides in (doc.get("segments") or {}).items():
        for node, spec in (overrides or {}).items():
            if (str(segment), str(node)) in written or not isinstance(spec, dict) or node not in nodes:
                continue
            merged = {**nodes[node], **spec}
            c, t = (_working_us(merged.get(key)) for key in ("commitment", "tolerance"))
            if c is not None and t is not None and t < c:
                old = original.segments[str(segment)][str(node)]
                spec["commitment"], spec["tolerance"] = format_duration(old.commitment), format_duration(old.tolerance)


def _working_us(value: Any) -> int | None:
    try:
        return parse_duration(value) if value is not None else None
    except DurationError:
        return None


def write_policy_dir(source: str, out: str, policies: PolicySet, rows: list[dict[str, Any]]) -> list[str]:
    """Write the directory; returns the files changed. The result is checked with the loader `slamon policy
    check` uses before it is moved into place (a PolicyError then means a bug here, and nothing is written)."""
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise OutError(f"{out} exists and is not an empty directory")
    by_process: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_process.setdefault(row["process"], []).append(row)
    staging = Path(tempfile.mkdtemp(prefix=".slamon-recommend-", dir=target.resolve().parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        changed = []
        for process, recs in sorted(by_process.items()):
            policy = policies.policies[process]
            doc = copy.deepcopy(policy.document)
            written = set()
            for r in recs:
                spec = _limit_spec(doc, r["node"], r["segment"])
                spec["commitment"] = format_duration(round(r["recommended"]["commitment_s"] * US))
                spec["tolerance"] = format_duration(round(r["recommended"]["tolerance_s"] * US))
                written.add((r["segment"] or DEFAULT_SEGMENT, r["node"]))
            _keep_segments_valid(doc, policy, written)
            old_version = doc.get("version", 1)
            doc["version"] = old_version + 1
            name = Path(policy.source).name
            header = (f"# Written by slamon recommend from {name} (version {old_version} -> {old_version + 1}):\n"
                      "# limits replaced by the recommendations, the rest kept (comments of the original are not).\n")
            (staging / name).write_text(header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True,
                                                                default_flow_style=None, width=110))
            changed.append(name)
        load_policy_dir(staging)  # what `slamon policy check` runs; raises PolicyError
        if target.exists():
            target.rmdir()
        staging.rename(target)
        return changed
    except OSError as exc:
        raise OutError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
