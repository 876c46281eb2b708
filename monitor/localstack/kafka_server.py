"""Apache Kafka from Maven Central jars: resolve them once, format a KRaft log dir, run a one-node broker+controller.

The version is pinned in deploy/local/pom.xml (`kafka.version`), the only place to change it. Under
`<cache>/kafka/<version>/` (see paths.cache_dir):

    libs/              the jars Maven copied (broker runtime + log4j2 backend)
    fetched.json       marker of a complete fetch (with the POM's digest: editing the POM fetches again)
    format-template/   bootstrap.checkpoint written once by `kafka.tools.StorageTool format`
    cds/kafka-*.jsa    class-data-sharing archive per JDK (delete cds/ to rebuild it, e.g. after a failure)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import paths
from .kafka_jars import MARKER, classpath, fetch, file_lock, kafka_version, version_dir
from .procs import LOOPBACK, StackError, alive, port_open, say, spawn, tail
from .security import Security

Progress = Callable[[str], None]

NODE_ID = 1

# Small and quick to start on a 2-core machine; SLAMON_KAFKA_JVM_OPTS replaces these (space-separated).
# C1 only (TieredStopAtLevel=1) starts faster but lowers the broker's peak throughput; it is not used so
# that benchmarks against the local stack measure a normally compiled broker.
DEFAULT_JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError",
                    "-Djava.awt.headless=true"]


# ------------------------------------------------------------------------------------------- the runtime


@dataclass(frozen=True)
class Runtime:
    """Everything needed to start brokers of the pinned version quickly.

    `template`: a data dir formatted once by `kafka.tools.StorageTool format` (static quorum, so it does not
    depend on ports); a fresh broker gets a copy of its bootstrap.checkpoint and its own meta.properties,
    which saves a JVM run per start. `cds_archive`: a dynamic class-data-sharing archive dumped by a training
    broker, which roughly halves the JVM's start-up (class loading and verification of ~45 jars).
    """

    version: str
    libs: Path
    classpath: str
    template: Path | None = None
    cds_archive: Path | None = None


def runtime(progress: Progress = say, *, prepare: bool = True, retry_failed: bool = False) -> Runtime:
    """Fetch the jars if needed and (once per version and JDK) build the format template and CDS archive.

    With `prepare=False` only what is already there is used. Failures of the optional parts are reported and
    skipped: brokers then start the slower way (a failed CDS training is retried only with `retry_failed`).
    """
    libs = fetch(progress)
    version = kafka_version()
    vdir = version_dir(version)
    jars = json.loads((vdir / MARKER).read_text())["jars"]
    rt = Runtime(version=version, libs=libs, classpath=classpath(libs, jars))
    template = vdir / "format-template"
    if not (template / "bootstrap.checkpoint").is_file() and prepare:
        with file_lock(vdir / ".lock"):
            if not (template / "bootstrap.checkpoint").is_file():
                _make_template(rt, template, progress)
    if (template / "bootstrap.checkpoint").is_file():
        rt = replace(rt, template=template)
    if not paths.kafka_cds_enabled():
        return rt
    archive = vdir / "cds" / f"kafka-{_jdk_key(rt.classpath)}.jsa"
    failed = archive.with_suffix(".failed")
    if retry_failed and prepare:
        failed.unlink(missing_ok=True)
    if not archive.is_file() and not failed.exists() and prepare:
        with file_lock(vdir / ".lock"):
            if not archive.is_file() and not failed.exists():
                _train_cds(rt, archive, progress)
    return replace(rt, cds_archive=archive) if archive.is_file() else rt


def _make_template(rt: Runtime, template: Path, progress: Progress) -> None:
    partial = template.with_name(f"{template.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        props = server_properties(1, 2, partial / "data")  # ports are not used by `format` (static quorum)
        (partial / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        result = subprocess.run(
            ["java", *DEFAULT_JVM_OPTS, f"-Dlog4j2.configurationFile={paths.LOG4J2_CONFIG}", "-cp", rt.classpath,
             "kafka.tools.StorageTool", "format", "-t", random_cluster_id(), "-c", str(partial / "server.properties")],
            cwd=partial, capture_output=True, text=True, timeout=120)
        checkpoint = partial / "data" / "bootstrap.checkpoint"
        if result.returncode != 0 or not checkpoint.is_file():
            progress(f"warning: `StorageTool format` failed, brokers will format their own dirs:\n"
                     f"{(result.stdout + result.stderr)[-2000:]}")
            return
        template.mkdir(parents=True, exist_ok=True)
        shutil.copy2(checkpoint, template / "bootstrap.checkpoint.tmp")
        os.replace(template / "bootstrap.checkpoint.tmp", template / "bootstrap.checkpoint")
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _jdk_key(classpath: str) -> str:
    """Identifies the JDK and classpath a CDS archive was dumped with (the JVM rejects any other)."""
    java = shutil.which("java")
    h = hashlib.sha256(classpath.encode())
    if java:
        real = Path(java).resolve()
        h.update(str(real).encode())
        for f in (real, real.parents[1] / "lib" / "server" / "libjvm.so", real.parents[1] / "lib" / "modules"):
            with contextlib.suppress(OSError):
                st = f.stat()
                h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _train_cds(rt: Runtime, archive: Path, progress: Progress) -> None:
    """Start a broker once with -XX:ArchiveClassesAtExit, make it serve a metadata and a FindCoordinator
    request, stop it with SIGTERM: the JVM writes the classes it loaded into `archive` on exit."""
    from .procs import free_ports, stop

    progress("building a class-data-sharing archive of the broker for faster starts (first time only)...")
    t0 = time.monotonic()
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f"{archive.name}.partial-{os.getpid()}")
    train_dir = archive.parent / f"train-{os.getpid()}"
    shutil.rmtree(train_dir, ignore_errors=True)
    port, controller_port = free_ports(2)
    server = KafkaServer(train_dir, port, controller_port, rt, extra_jvm_opts=(f"-XX:ArchiveClassesAtExit={partial}",))
    ok = False
    try:
        server.prepare()
        proc = server.start()
        server.wait_ready(proc.pid, 120)
        stop(proc.pid, None, name="Kafka (CDS training)", timeout=60, progress=progress)
        # killed (SIGKILL after the deadline) means the dump may be incomplete
        ok = proc.returncode not in (None, -9) and partial.is_file() and partial.stat().st_size > 0
    except StackError as e:
        progress(f"warning: the CDS training broker failed: {e}")
    finally:
        if ok:
            os.replace(partial, archive)
            progress(f"CDS archive {archive} ({archive.stat().st_size >> 20} MiB, {time.monotonic() - t0:.1f}s)")
        else:
            progress(f"warning: no CDS archive (see {server.log_path}); brokers start without it")
            archive.with_suffix(".failed").write_text(tail(server.log_path))
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        if ok:
            shutil.rmtree(train_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------- the broker


def random_cluster_id() -> str:
    """A cluster id as Kafka's `StorageTool random-uuid` makes it: base64url of 16 random bytes, no padding."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def cluster_id(data_dir: Path) -> str | None:
    """The cluster id a formatted log dir belongs to (its meta.properties), None if it is not formatted."""
    try:
        text = (data_dir / "meta.properties").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "cluster.id":
            return value.strip()
    return None


def server_properties(port: int, controller_port: int, data_dir: Path,
                      security: Security | None = None, host: str = LOOPBACK) -> dict[str, str]:
    """Combined broker+controller on 127.0.0.1 with the fast-start settings of Kafka's own test kit; with
    `security`, its one client (and inter-broker) listener is secured (see security.py). `host`: the address the
    plaintext client listener binds and advertises (e.g. a bridge address reached from other network
    namespaces); the controller listener and a secured listener stay on 127.0.0.1."""
    props = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        # static quorum: the formatted dir does not depend on the ports (no `format --standalone`)
        "controller.quorum.voters": f"{NODE_ID}@{LOOPBACK}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(data_dir),
        # one node: every internal topic with replication 1, and few partitions (default 50) for a fast start
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        "auto.create.topics.enable": "true",
        "group.initial.rebalance.delay.ms": "0",
        # small allocations and pools (the dedupe buffer alone is 128 MiB by default)
        "log.cleaner.dedupe.buffer.size": "2097152",
        "log.cleaner.threads": "1",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "num.replica.fetchers": "1",
    }
    return {**props, **security.kafka_properties(port, controller_port)} if security else props


def jvm_opts(tmp_dir: Path, cds_archive: Path | None = None) -> list[str]:
    opts = paths.kafka_jvm_opts() or list(DEFAULT_JVM_OPTS)
    if cds_archive:
        opts.append(f"-XX:SharedArchiveFile={cds_archive}")
    # zstd / snappy unpack their native code into java.io.tmpdir: keep it inside the stack dir
    return [*opts, f"-Djava.io.tmpdir={tmp_dir}", f"-Dlog4j2.configurationFile={paths.LOG4J2_CONFIG}"]


@dataclass
class KafkaServer:
    """One broker+controller whose config, data and log live in `directory` (its working directory too).

    Restartable: `prepare` formats the data dir only the first time, so a stopped or killed broker comes
    back with its topics and committed offsets (same ports, same cluster id).

    `host` (plaintext only): the address its client listener binds and advertises. `wrapper`: a command prefix the
    JVM is started through, e.g. ("ip", "netns", "exec", NAME) to run it in a network namespace (it must exec
    the JVM, so that the pid started is the broker's). `properties`: server properties over the defaults.
    """

    directory: Path
    port: int
    controller_port: int
    runtime: Runtime
    extra_jvm_opts: tuple[str, ...] = ()
    security: Security | None = None
    host: str = LOOPBACK
    wrapper: tuple[str, ...] = ()
    properties: tuple[tuple[str, str], ...] = ()  # server properties set over the defaults

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "kafka.log"

    def _java(self, main: str, *args: str) -> list[str]:
        return ["java", *jvm_opts(self.directory / "tmp", self.runtime.cds_archive), *self.extra_jvm_opts,
                "-cp", self.runtime.classpath, main, *args]

    def prepare(self) -> None:
        """Write server.properties and format the KRaft log dir (unless formatted already)."""
        (self.directory / "tmp").mkdir(parents=True, exist_ok=True)
        props = {**server_properties(self.port, self.controller_port, self.data_dir, self.security, self.host),
                 **dict(self.properties)}
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold passwords
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in props.items()))
        if (self.data_dir / "meta.properties").exists():
            return
        users = self.security.format_args() if self.security else []
        if self.runtime.template and not users:  # SCRAM users live in the bootstrap records: format them
            # what `format` writes: the version's bootstrap records and this node's identity
            self.data_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.runtime.template / "bootstrap.checkpoint", self.data_dir / "bootstrap.checkpoint")
            meta = {"node.id": str(NODE_ID), "directory.id": random_cluster_id(), "version": "1",
                    "cluster.id": random_cluster_id()}
            (self.data_dir / "meta.properties").write_text("".join(f"{k}={v}\n" for k, v in meta.items()))
            return
        cmd = self._java("kafka.tools.StorageTool", "format", "-t", random_cluster_id(),
                         "-c", str(self.config_path), *users)
        result = subprocess.run(cmd, cwd=self.directory, capture_output=True, text=True, timeout=120)
        with open(self.log_path, "a") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise StackError(f"formatting the Kafka log dir {self.data_dir} failed (exit {result.returncode}):\n"
                             f"{tail(self.log_path, 30)}")

    def start(self) -> subprocess.Popen:
        """Launch the broker in the background (see `wait_ready`)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return spawn([*self.wrapper, *self._java("kafka.Kafka", str(self.config_path))], cwd=self.directory,
                     log=self.log_path)

    def client_options(self) -> dict[str, Any]:
        """aiokafka's arguments to reach this broker (its security included)."""
        if self.security is None:
            return {"bootstrap_servers": self.bootstrap}
        return self.security.kafka_client_options(self.bootstrap)

    def wait_ready(self, pid: int, timeout: float) -> None:
        """Block until the broker answers a metadata request; StackError with the log's tail otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            if not alive(pid):
                raise StackError(f"Kafka exited during start-up; last lines of {self.log_path}:\n"
                                 f"{tail(self.log_path)}")
            if port_open(self.port, self.host) and probe(self.client_options(), timeout=5, group_coordinator=True):
                return
            if time.monotonic() >= deadline:
                raise StackError(f"Kafka did not answer on {self.bootstrap} within {timeout:.0f}s; "
                                 f"last lines of {self.log_path}:\n{tail(self.log_path)}")
            time.sleep(0.1)


# ----------------------------------------------------------------------------------------------- probing


@contextlib.contextmanager
def _quiet_aiokafka() -> Iterator[None]:
    """aiokafka logs every refused connection at ERROR; while probing, that is the expected answer."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def probe_async(client_options: dict[str, Any], timeout: float = 5.0, group_coordinator: bool = False) -> bool:
    """True if the broker answers a metadata request listing itself (and, if asked, can coordinate groups:
    the first FindCoordinator creates __consumer_offsets, so a consumer group joins at once afterwards).
    `client_options`: aiokafka's connection arguments (bootstrap_servers, security)."""
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaClient(**client_options, request_timeout_ms=int(timeout * 1000),
                            client_id="slamon-localstack-probe")
    try:
        async with asyncio.timeout(timeout):
            await client.bootstrap()
            if not client.cluster.brokers():
                return False
            if group_coordinator:
                await client.coordinator_lookup(0, "slamon-localstack-probe")  # 0 = group coordinator
        return True
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await client.close()


def probe(client_options: dict[str, Any] | str, timeout: float = 5.0, group_coordinator: bool = False) -> bool:
    """Synchronous `probe_async` (runs its own event loop: call it from plain, non-async code). A string is the
    bootstrap servers of a plaintext broker."""
    if isinstance(client_options, str):
        client_options = {"bootstrap_servers": client_options}
    with _quiet_aiokafka():
        return asyncio.run(probe_async(client_options, timeout, group_coordinator))
