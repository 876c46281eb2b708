"""The topic catalogue (topics/catalogue.yaml), the JSON Schemas of topic values, and `slamon topics`.

- `load_catalogue()` reads the catalogue into `TopicSpec`s, applying the partition and replication overrides
  (arguments, else `SLAMON_PARTITIONS` / `SLAMON_REPLICATION`, else the catalogue's defaults).
- `apply_topics(bootstrap, specs)` creates missing topics and compares existing ones with the catalogue,
  changing nothing that exists; it returns one `TopicReport` per topic. The worker calls it at start-up.
- `slamon topics list | apply | schema` are the command-line face of the above.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TOPICS_DIR = Path(os.environ.get("SLAMON_TOPICS_DIR") or Path(__file__).resolve().parent.parent / "topics")
CATALOGUE_FILE = "catalogue.yaml"
SCHEMAS_DIR = "schemas"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_TIMEOUT_S = 30.0

# Kafka error codes met when creating topics (see the Kafka protocol's error table).
_TOPIC_ALREADY_EXISTS = 36


class TopicsError(Exception):
    """A catalogue or cluster problem, with a message meant for a person."""


class ClusterUnreachable(TopicsError):
    """The Kafka cluster could not be reached (bootstrap failed or timed out)."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the catalogue, with overrides and prefix applied."""

    name: str  # full topic name, prefix included
    partitions: int
    replication: int
    config: dict[str, str]
    schema: str  # file name in topics/schemas/
    description: str
    logical_name: str = ""  # the catalogue name, without prefix (e.g. `workflow.events`)
    key: str | None = None  # what the message key is, for people
    internal: bool = False
    copartition: str | None = None  # full name of the topic this one must have as many partitions as


@dataclass
class Difference:
    setting: str  # `partitions`, `replication` or a config name
    wanted: str
    actual: str

    def __str__(self) -> str:
        return f"{self.setting}: wanted {self.wanted}, actual {self.actual}"


@dataclass
class TopicReport:
    topic: str
    status: str  # `created`, `ok`, `differs` or `failed`
    differences: list[Difference] = field(default_factory=list)
    detail: str = ""

    @property
    def good(self) -> bool:
        return self.status in ("created", "ok")

    def line(self) -> str:
        text = f"{self.topic}: {self.status}"
        if self.differences:
            text += ": " + "; ".join(str(d) for d in self.differences)
        if self.detail:
            text += f" ({self.detail})"
        return text


# ---------------------------------------------------------------------------------------------------------
# catalogue and schemas


def _positive_int(value: Any, what: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise TopicsError(f"{what} must be a positive integer, got {value!r}") from None
    if number < 1:
        raise TopicsError(f"{what} must be a positive integer, got {value!r}")
    return number


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return _positive_int(value, name) if value else None


def load_catalogue(
    partitions: int | None = None,
    replication: int | None = None,
    prefix: str = "",
    path: Path | None = None,
) -> list[TopicSpec]:
    """The catalogue's topics, in catalogue order.

    `partitions` (else env `SLAMON_PARTITIONS`, else the catalogue default) sets the partition count of the
    topics marked `partitions: default` (workflow.events and sla.ticks); `replication` (else
    `SLAMON_REPLICATION`, else the default) that of every topic marked `replication: default`.
    `prefix` is prepended to every topic name (tests, multi-tenant clusters).
    """
    path = path or TOPICS_DIR / CATALOGUE_FILE
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TopicsError(f"cannot read the topic catalogue {path}: {exc}") from exc
    defaults = doc.get("defaults") or {}
    if partitions is None:
        partitions = _env_int("SLAMON_PARTITIONS")
    if replication is None:
        replication = _env_int("SLAMON_REPLICATION")
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


def schema_path(name: str) -> Path:
    """Path of a schema given its file name (`sla-warning.schema.json`), its stem (`sla-warning`) or the
    logical name of its topic (`sla.warnings`)."""
    directory = TOPICS_DIR / SCHEMAS_DIR
    for spec in load_catalogue(partitions=1, replication=1):  # numbers do not matter, env must not
        if name == spec.logical_name:
            return directory / spec.schema
    if not name.endswith(".json"):
        name += ".schema.json"
    return directory / name


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a topic's values, as a dict. See `schema_path` for `name`."""
    path = schema_path(name)
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise TopicsError(f"no schema {name!r} ({path}): {exc.strerror}") from exc


# ---------------------------------------------------------------------------------------------------------
# applying the catalogue to a cluster


def _norm(setting: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if setting == "cleanup.policy":  # `compact,delete` == `delete, compact`
        return ",".join(sorted(p.strip() for p in value.split(",") if p.strip()))
    return value


def _compare(spec: TopicSpec, meta: dict[str, Any], configs: dict[str, str | None],
             wanted_partitions: int) -> list[Difference]:
    diffs = []
    partitions = meta.get("partitions") or []
    if len(partitions) != wanted_partitions:
        diffs.append(Difference("partitions", str(wanted_partitions), str(len(partitions))))
    factors = sorted({len(p["replicas"]) for p in partitions})
    if factors and factors != [spec.replication]:
        actual = "/".join(str(f) for f in factors)
        diffs.append(Difference("replication", str(spec.replication), actual))
    for key, wanted in spec.config.items():
        actual = configs.get(key)
        if _norm(key, actual) != _norm(key, wanted):
            diffs.append(Difference(key, wanted, "(not set)" if actual is None else actual))
    return diffs


async def _topic_metadata(admin: Any) -> dict[str, dict[str, Any]]:
    # Ask for all topics: a metadata request naming topics lets the broker auto-create them
    # (aiokafka sends allow_auto_topic_creation=True), which would create them with broker defaults.
    return {t["topic"]: t for t in await admin.describe_topics()}


async def _topic_configs(admin: Any, specs: list[TopicSpec]) -> dict[str, dict[str, Any]]:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    if not specs:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, s.name, dict.fromkeys(s.config)) for s in specs]
    result: dict[str, dict[str, Any]] = {}
    for response in await admin.describe_configs(resources):
        for res in response.to_object()["resources"]:
            if res["error_code"]:
                result[res["resource_name"]] = {"__error__": f"error {res['error_code']} {res['error_message']}"}
                continue
            result[res["resource_name"]] = {e["config_names"]: e["config_value"] for e in res["config_entries"]}
    return result


async def _wait_ready(admin: Any, names: list[str], deadline: float) -> list[str]:
    """Wait until every named topic has all its partitions with a leader; return those that did not."""
    pending = list(names)
    while pending:
        meta = await _topic_metadata(admin)
        pending = [
            n for n in pending
            if n not in meta or meta[n]["error_code"] or not meta[n]["partitions"]
            or any(p["leader"] < 0 for p in meta[n]["partitions"])
        ]
        if not pending or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.2)
    return pending


async def apply_topics(
    bootstrap: str,
    specs: list[TopicSpec],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    client_id: str = "slamon-topics",
) -> list[TopicReport]:
    """Create the missing topics of `specs`, compare the existing ones; change nothing that exists.

    A topic with `copartition` is created with the partition count its partner actually has, and compared
    against it: co-partitioning matters more than the catalogue's number.
    Returns one report per spec, in order. Raises `ClusterUnreachable` when the cluster cannot be reached.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id=client_id, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.1)):
                await admin.start()
                meta = await _topic_metadata(admin)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise ClusterUnreachable(f"cannot reach Kafka at {bootstrap}: {exc or type(exc).__name__}") from exc

        def wanted_partitions(spec: TopicSpec) -> tuple[int, str]:
            partner = meta.get(spec.copartition) if spec.copartition else None
            if partner and partner.get("partitions"):
                return len(partner["partitions"]), f"co-partitioned with {spec.copartition}"
            return spec.partitions, ""

        reports: dict[str, TopicReport] = {}
        missing = [s for s in specs if s.name not in meta]
        if missing:
            new = []
            for s in missing:
                n, _ = wanted_partitions(s)
                new.append(NewTopic(s.name, n, s.replication, topic_configs=dict(s.config)))
            response = await admin.create_topics(new, timeout_ms=int(max(deadline - time.monotonic(), 1) * 1000))
            raced = []
            for err in response.to_object()["topic_errors"]:
                name, code = err["topic"], err["error_code"]
                if code == 0:
                    n, why = wanted_partitions(next(s for s in missing if s.name == name))
                    detail = f"{n} partition{'s' if n != 1 else ''}" + (f", {why}" if why else "")
                    reports[name] = TopicReport(name, "created", detail=detail)
                elif code == _TOPIC_ALREADY_EXISTS:  # created meanwhile by someone else: compare below
                    raced.append(name)
                else:
                    message = err.get("error_message") or ""
                    reports[name] = TopicReport(name, "failed", detail=f"error {code} {message}".strip())
            not_ready = await _wait_ready(admin, [n for n, r in reports.items() if r.status == "created"]
                                          + raced, deadline)
            for name in not_ready:
                if name in reports:
                    reports[name].detail += "; not ready yet (partitions without leader)"
            meta = await _topic_metadata(admin)

        existing = [s for s in specs if s.name not in reports]
        configs = await _topic_configs(admin, [s for s in existing if s.name in meta])
        for spec in existing:
            if spec.name not in meta:
                reports[spec.name] = TopicReport(spec.name, "failed", detail="not created and not found")
                continue
            if meta[spec.name]["error_code"]:
                code = meta[spec.name]["error_code"]
                reports[spec.name] = TopicReport(spec.name, "failed", detail=f"metadata error {code}")
                continue
            topic_configs = configs.get(spec.name, {})
            if "__error__" in topic_configs:
                reports[spec.name] = TopicReport(spec.name, "failed", detail=topic_configs["__error__"])
                continue
            n, why = wanted_partitions(spec)
            diffs = _compare(spec, meta[spec.name], topic_configs, n)
            reports[spec.name] = TopicReport(spec.name, "differs" if diffs else "ok", diffs, why)
        return [reports[s.name] for s in specs]
    except KafkaError as exc:
        raise TopicsError(f"Kafka at {bootstrap} failed: {exc}") from exc
    finally:
        await admin.close()


# ---------------------------------------------------------------------------------------------------------
# command line


def _cmd_list(args: argparse.Namespace) -> int:
    try:
        specs = load_catalogue(args.partitions, args.replication, args.prefix)
    except TopicsError as exc:
        print(f"slamon topics list: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([dataclasses.asdict(s) for s in specs], indent=2))
        return 0
    for s in specs:
        configs = ", ".join(f"{k}={v}" for k, v in s.config.items())
        print(f"{s.name}")
        print(f"    {s.description}")
        print(f"    partitions={s.partitions} replication={s.replication} key={s.key or '-'} schema={s.schema}"
              + (f" co-partitioned with {s.copartition}" if s.copartition else ""))
        print(f"    {configs}")
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    try:
        specs = load_catalogue(args.partitions, args.replication, args.prefix)
    except TopicsError as exc:
        print(f"slamon topics apply: {exc}", file=sys.stderr)
        return 2
    try:
        reports = asyncio.run(apply_topics(args.bootstrap, specs, timeout_s=args.timeout))
    except ClusterUnreachable as exc:
        print(f"slamon topics apply: {exc}", file=sys.stderr)
        return 2
    except TopicsError as exc:
        print(f"slamon topics apply: {exc}", file=sys.stderr)
        return 1
    for report in reports:
        print(report.line())
    bad = [r for r in reports if not r.good]
    if bad:
        print(f"{len(bad)} of {len(reports)} topics differ from the catalogue or failed; nothing existing was changed",
              file=sys.stderr)
        return 1
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    try:
        print(json.dumps(load_schema(args.name), indent=2))
    except TopicsError as exc:
        print(f"slamon topics schema: {exc}", file=sys.stderr)
        return 2
    return 0


def _catalogue_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partitions", type=int, default=None, metavar="N",
                        help="partitions of workflow.events and sla.ticks "
                        "(default: env SLAMON_PARTITIONS, else the catalogue's 6)")
    parser.add_argument("--replication", type=int, default=None, metavar="N",
                        help="replication factor of every topic (default: env SLAMON_REPLICATION, else 1)")
    parser.add_argument("--prefix", default="", metavar="TEXT",
                        help="prefix prepended to every topic name (tests, multi-tenant clusters); default none")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `slamon topics` to the `slamon` command."""
    parser = subparsers.add_parser(
        "topics",
        help="the Kafka topic catalogue: list it, apply it to a cluster, print schemas",
        description="The topics slamon reads and writes (topics/catalogue.yaml) and the JSON Schemas of "
        "their values (topics/schemas/).",
    )
    sub = parser.add_subparsers(dest="topics_command", metavar="ACTION")
    sub.required = True

    p_list = sub.add_parser("list", help="print the catalogue",
                            description="Print every topic of the catalogue with its settings.")
    _catalogue_options(p_list)
    p_list.add_argument("--json", action="store_true", help="print JSON instead of text")
    p_list.set_defaults(func=_cmd_list)

    p_apply = sub.add_parser(
        "apply",
        help="create missing topics, report differences of existing ones",
        description="Create the catalogue's missing topics with their configs; compare existing topics "
        "(partitions, replication, configs) with the catalogue and report differences without changing "
        "anything. A topic co-partitioned with another (sla.ticks) follows the partition count the other "
        "actually has. Exit status: 0 when every topic was created or matches, 1 when some topic differs "
        "or could not be created, 2 when Kafka cannot be reached or the arguments are unusable.",
    )
    p_apply.add_argument("--bootstrap", default=os.environ.get("SLAMON_KAFKA_BOOTSTRAP") or DEFAULT_BOOTSTRAP,
                         metavar="HOST:PORT",
                         help=f"Kafka bootstrap servers (default: env SLAMON_KAFKA_BOOTSTRAP, else {DEFAULT_BOOTSTRAP})")
    _catalogue_options(p_apply)
    p_apply.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                         help=f"give up after this long (default {DEFAULT_TIMEOUT_S:g})")
    p_apply.set_defaults(func=_cmd_apply)

    p_schema = sub.add_parser("schema", help="print the JSON Schema of a topic's values",
                              description="Print the JSON Schema (draft 2020-12) of a topic's values.")
    p_schema.add_argument("name", help="topic (sla.warnings), schema file or its stem (sla-warning)")
    p_schema.set_defaults(func=_cmd_schema)


def main(argv: list[str] | None = None) -> int:
    """`python -m monitor.topics ACTION ...`: the same as `slamon topics ACTION ...`."""
    parser = argparse.ArgumentParser(prog="slamon")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["topics", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
