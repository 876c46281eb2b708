"""The topic catalogue (`data/catalogue.yaml`, i.e. the repository's `topics/`) and the JSON Schemas of topic values.

The catalogue and the schemas ship inside the package, so an installed `slamon` finds them from any directory.
`load_catalogue()` reads the catalogue into `TopicSpec`s with the partition, replication and prefix of the caller
(the commands take them from `Settings`); `topic_names()` maps the catalogue's names to the real topic names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DATA_DIR = Path(__file__).resolve().parent / "data"
CATALOGUE_FILE = DATA_DIR / "catalogue.yaml"
SCHEMAS_DIR = DATA_DIR / "schemas"

# The catalogue's names, as the rest of the package refers to the topics.
EVENTS = "workflow.events"
TICKS = "sla.ticks"
WARNINGS = "sla.warnings"
OUTCOMES = "sla.outcomes"
DEADLETTER = "sla.deadletter"
POLICIES = "sla.policies"


class TopicsError(Exception):
    """A catalogue or cluster problem, with a message meant for a person."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the catalogue, with overrides and prefix applied."""

    name: str  # full topic name, prefix included
    partitions: int
    replication: int
    config: dict[str, str]
    schema: str  # file name in the schemas directory
    description: str
    logical_name: str = ""  # the catalogue name, without prefix (e.g. `workflow.events`)
    key: str | None = None  # what the message key is, for people
    internal: bool = False
    copartition: str | None = None  # full name of the topic this one must have as many partitions as


def _positive_int(value: Any, what: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise TopicsError(f"{what} must be a positive integer, got {value!r}") from None
    if number < 1:
        raise TopicsError(f"{what} must be a positive integer, got {value!r}")
    return number


def load_catalogue(
    partitions: int | None = None,
    replication: int | None = None,
    prefix: str = "",
    path: Path | None = None,
) -> list[TopicSpec]:
    """The catalogue's topics, in catalogue order.

    `partitions` (else the catalogue default) sets the partition count of the topics marked `partitions: default`
    (workflow.events and sla.ticks); `replication` (else the default) that of every topic marked
    `replication: default`. `prefix` is prepended to every topic name (tests, multi-tenant clusters).
    """
    path = path or CATALOGUE_FILE
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TopicsError(f"cannot read the topic catalogue {path}: {exc}") from exc
    defaults = doc.get("defaults") or {}
    default_partitions = _positive_int(
        partitions if partitions is not None else defaults.get("partitions", 6), "partitions"
    )
    default_replication = _positive_int(
        replication if replication is not None else defaults.get("replication", 1), "replication"
    )
    replicated_from = int(defaults.get("replicated_from", 3))
    replicated_config = {str(k): str(v) for k, v in (defaults.get("replicated_config") or {}).items()}

    specs = []
    for entry in doc.get("topics") or []:
        name = entry["name"]
        raw_p = entry.get("partitions", "default")
        raw_r = entry.get("replication", "default")
        n_part = default_partitions if raw_p == "default" else _positive_int(raw_p, f"{name}.partitions")
        n_repl = default_replication if raw_r == "default" else _positive_int(raw_r, f"{name}.replication")
        config = {str(k): str(v) for k, v in (entry.get("config") or {}).items()}
        if n_repl >= replicated_from:
            config = {**replicated_config, **config}
        copartition = entry.get("copartition")
        specs.append(
            TopicSpec(
                name=prefix + name,
                partitions=n_part,
                replication=n_repl,
                config=config,
                schema=entry["schema"],
                description=entry.get("description", ""),
                logical_name=name,
                key=entry.get("key"),
                internal=bool(entry.get("internal", False)),
                copartition=prefix + copartition if copartition else None,
            )
        )
    by_name = {s.name: s for s in specs}
    for spec in specs:
        other = by_name.get(spec.copartition) if spec.copartition else None
        if spec.copartition and (other is None or other.partitions != spec.partitions):
            raise TopicsError(f"catalogue: {spec.name} must be co-partitioned with {spec.copartition}")
    return specs


def catalogue_by_name(specs: list[TopicSpec]) -> dict[str, TopicSpec]:
    """The specs by logical (catalogue) name, e.g. `by_name["workflow.events"].name` is the real topic."""
    return {s.logical_name: s for s in specs}


def topic_names(prefix: str = "") -> dict[str, str]:
    """Catalogue name -> real topic name under `prefix` (`topic_names("t.")[WARNINGS] == "t.sla.warnings"`)."""
    return {s.logical_name: s.name for s in load_catalogue(partitions=1, replication=1, prefix=prefix)}


def schema_path(name: str) -> Path:
    """Path of a schema given its file name (`sla-warning.schema.json`), its stem (`sla-warning`) or the
    logical name of its topic (`sla.warnings`)."""
    for spec in load_catalogue(partitions=1, replication=1):  # the numbers do not matter here
        if name == spec.logical_name:
            return SCHEMAS_DIR / spec.schema
    if not name.endswith(".json"):
        name += ".schema.json"
    return SCHEMAS_DIR / name


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a topic's values, as a dict. See `schema_path` for `name`."""
    path = schema_path(name)
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise TopicsError(f"no schema {name!r} ({path}): {exc.strerror}") from exc
