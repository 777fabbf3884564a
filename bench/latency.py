"""Item → Slack latency of the daemon: ``python -m bot run`` as a subprocess, real peers.

The daemon polls ``feeds`` feeds of the bench feed server every ``interval``
seconds (no jitter) and posts matches of a probe rule to the Slack emulator.
Once every feed has been polled, a probe item is published in a random feed at
a random moment; the latency is from publishing to the emulator accepting the
message. Expected bound: the poll interval + 2 s.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.feedserver import FeedServerProcess
from bench.workloads import rules_of
from tests.peers.slack_emulator import TOKEN, SlackEmulator

ROOT = Path(__file__).resolve().parent.parent


def _config(
    folder: Path,
    server: FeedServerProcess,
    feeds: int,
    interval: float,
    slack: SlackEmulator,
    background_rules: int,
) -> None:
    lines = [
        f"store: sqlite:{folder}/store.db",
        "server: {host: 127.0.0.1, port: 0}",
        f"schedule: {{interval: {interval:g}s, jitter: 0s}}",
        "http: {timeout: 10s}",
        "feeds:",
        *(f"  - {{id: f{i}, url: '{server.url(i)}'}}" for i in range(feeds)),
        "destinations:",
        "  console: {type: console}",
        "  desk:",
        "    type: slack",
        '    channel: "#bench"',
        "    token: ${BENCH_SLACK_TOKEN}",
        f"    base_url: {slack.base_url}",
    ]
    (folder / "settings.yaml").write_text("\n".join(lines) + "\n")
    rules = [
        "rules:",
        "  - id: probe",
        "    title: Latency probe",
        "    query: benchprobe",
        "    notify: [desk]",
    ]
    for rule in rules_of(background_rules):
        query = rule.query.replace("'", "''")  # type: ignore[union-attr]
        rules += [
            f"  - id: {rule.id}",
            f"    title: {rule.title}",
            f"    query: '{query}'",
            "    notify: [console]",
        ]
    (folder / "rules.yaml").write_text("\n".join(rules) + "\n")


def measure(
    server: FeedServerProcess,
    *,
    feeds: int,
    interval: float,
    probes: int,
    background_rules: int = 100,
    seed: int = 3,
) -> dict[str, object]:
    rng = random.Random(seed)
    server.reset()
    with tempfile.TemporaryDirectory() as tmp, SlackEmulator() as slack:
        folder = Path(tmp)
        _config(folder, server, feeds, interval, slack, background_rules)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
        env["BENCH_SLACK_TOKEN"] = TOKEN
        log = (folder / "daemon.log").open("w")
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "--config", str(folder), "--log-format", "json", "run"],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
            cwd=ROOT,
        )
        try:
            deadline = time.monotonic() + 300
            while server.stats()["200"] < feeds:  # every feed fetched once: baselined
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"daemon did not baseline the feeds (exit {proc.poll()})")
                time.sleep(0.2)
            baseline = time.monotonic() - started
            time.sleep(interval)  # let the first cycle's writes finish
            latencies: list[float] = []
            for k in range(probes):
                time.sleep(rng.uniform(0, interval))
                token = f"benchprobe{k}x{rng.randrange(10**6)}"
                published = time.monotonic()
                server.inject(rng.randrange(feeds), f"Benchprobe {token} reported")
                arrived = _wait_message(slack, token, interval + 30)
                latencies.append(arrived - published if arrived is not None else float("inf"))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
    return {
        "latencies": latencies,
        "interval": interval,
        "feeds": feeds,
        "baseline_seconds": baseline,
    }


def _wait_message(slack: SlackEmulator, token: str, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    with slack.delivered:
        while time.monotonic() < deadline:
            for message in slack.messages:
                if token in message.text or token in str(message.blocks):
                    return message.at
            slack.delivered.wait(timeout=0.2)
    return None


__all__ = ["measure", "sys"]
