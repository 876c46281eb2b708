"""`slamon demo`: the local stack, one worker, the board and the notifier, generated orders, warnings live."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..catalogue import EVENTS, topic_names
from ..localstack import down, up
from ..localstack.procs import free_port
from ..settings import Settings
from .generator import Generator
from .view import live_view

ROOT = Path(__file__).resolve().parent.parent.parent
POLICIES = ROOT / "deploy" / "demo" / "policies"


def run_demo(rate: float, duration: float, web_port: int, seed: int | None) -> int:
    """The whole demo; returns the exit status. Stops everything it started on Ctrl-C."""
    info = up()
    port = web_port or free_port()
    prefix = "demo."
    data = ROOT / ".stack" / "demo-data"
    log_path = ROOT / ".stack" / "demo-worker.log"
    log_path.parent.mkdir(exist_ok=True)
    env = {**os.environ, **info.env, "SLAMON_TOPIC_PREFIX": prefix, "SLAMON_APP_ID": "slamon-demo",
           "SLAMON_POLICIES": str(POLICIES), "SLAMON_TICK_INTERVAL": "0.5", "SLAMON_WEB_PORT": str(port),
           "SLAMON_DATA_DIR": str(data), "SLAMON_STORE": os.environ.get("SLAMON_STORE", "rocksdb://"),
           "SLAMON_API_TOKEN": os.environ.get("SLAMON_API_TOKEN", "demo-token")}
    children: list[subprocess.Popen] = []

    def spawn(args: list[str], log_name: str, extra: dict[str, str] | None = None) -> subprocess.Popen:
        with (ROOT / ".stack" / log_name).open("ab") as log:
            p = subprocess.Popen(args, env={**env, **(extra or {})}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        children.append(p)
        return p

    am_exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    am_port = free_port()
    if am_exe:
        env["SLAMON_ALERTMANAGER_URL"] = f"http://127.0.0.1:{am_port}"
        spawn([am_exe, f"--config.file={ROOT / 'deploy/alertmanager/alertmanager.yml'}",
               f"--storage.path={ROOT / '.stack' / 'demo-alertmanager'}", f"--web.listen-address=127.0.0.1:{am_port}",
               "--cluster.listen-address="], "demo-alertmanager.log")
    print(f"demo: starting a worker, the board{' and the notifier' if am_exe else ''} "
          f"(logs: .stack/demo-*.log)", flush=True)
    worker = spawn([sys.executable, "-m", "monitor.cli", "worker"], "demo-worker.log")
    spawn([sys.executable, "-m", "monitor.cli", "board"], "demo-board.log")
    if am_exe:
        spawn([sys.executable, "-m", "monitor.cli", "notifier", "--lease", "60", "--resend", "15"],
              "demo-notifier.log")
    try:
        deadline = time.monotonic() + 120
        while True:
            if worker.poll() is not None:
                print(f"demo: the worker exited ({worker.returncode}); see {log_path}", file=sys.stderr)
                return 1
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200:
                    break
            if time.monotonic() > deadline:
                print("demo: the worker did not become ready in 120 s", file=sys.stderr)
                return 1
            time.sleep(0.5)
        print(f"demo: worker ready. Metrics: http://127.0.0.1:{port}/metrics  Readiness: "
              f"http://127.0.0.1:{port}/readyz", flush=True)
        if am_exe:
            print(f"demo: alerts in Alertmanager: http://127.0.0.1:{am_port}/#/alerts "
                  f"(API: http://127.0.0.1:{am_port}/api/v2/alerts)", flush=True)
        print(f"demo: the breach board: curl -H 'Authorization: Bearer {env['SLAMON_API_TOKEN']}' "
              f"'http://127.0.0.1:{port}/api/breaches?limit=5'", flush=True)
        print("demo: generating orders (Ctrl-C to stop). Warnings as they happen "
              "(crossed at, kind, process/node, order, elapsed, limit, owner, detection delay):\n", flush=True)
        settings = Settings.from_env(env)
        asyncio.run(_generate_and_show(settings, rate, duration, seed))
    except KeyboardInterrupt:
        print("\ndemo: stopping", flush=True)
    finally:
        for child in reversed(children):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        if not info.reused:
            down()
    return 0


async def _generate_and_show(settings: Settings, rate: float, duration: float, seed: int | None) -> None:
    gen = Generator(settings, topic_names(settings.topic_prefix)[EVENTS], random.Random(seed))
    tasks = [asyncio.create_task(gen.run(rate)),
             asyncio.create_task(live_view(settings, sys.stdout.isatty()))]
    try:
        if duration:
            await asyncio.wait(tasks, timeout=duration, return_when=asyncio.FIRST_EXCEPTION)
        else:
            await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception():
                raise t.exception()  # type: ignore[misc]
        print(f"\ndemo: {gen.n} orders, {gen.sent} events sent", flush=True)
