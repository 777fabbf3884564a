"""Drives podman against the built image with real loopback peers (see scripts/container-smoke).

Starts a feed server and a Slack emulator on 127.0.0.1, writes a config for
them, and checks, in a hardened container (read-only root, tmpfs /tmp, no
capabilities, no new privileges, host network): ``--version``, a non-root uid,
``once`` (baseline, then an alert), and the daemon (healthy, alerts, stops with
exit 0). Every wait is a condition with a deadline. Exit 0 when all pass.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.peers.feed_server import FeedServer
from tests.peers.rss import Entry, rss
from tests.peers.slack_emulator import TOKEN, SlackEmulator

HARDENED = [
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--network=host",
    "--init",
]
NOW = datetime.now(UTC)
OLD = Entry(
    "Budget tabled in Ottawa",
    "Nothing to see.",
    "https://news.example/old",
    published=NOW - timedelta(days=3),
)
NEW = [
    Entry(
        f"RCMP officers deploy to Iraq ({n})",
        "The RCMP will train police in Mosul.",
        f"https://news.example/iraq-{n}",
        published=NOW - timedelta(minutes=n),
    )
    for n in (1, 2)
]


class SmokeFailure(Exception):
    pass


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise SmokeFailure(
            f"podman {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        )
    return proc


def wait_until(what: str, condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise SmokeFailure(f"timed out after {timeout:.0f}s waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(directory: Path, feed_url: str, slack: SlackEmulator, port: int) -> None:
    """A config the container user (uid 10001) can read; the store stays the shipped default."""
    directory.chmod(0o755)
    files = {
        "settings.yaml": f"""
            server: {{host: 127.0.0.1, port: {port}}}
            schedule: {{interval: 1s, jitter: 0s}}
            http: {{timeout: 5s}}
            feeds:
              - {{id: news, url: '{feed_url}'}}
            destinations:
              desk: {{type: slack, channel: "#smoke", token: "${{SLACK_TEST_TOKEN}}",
                      base_url: '{slack.base_url}'}}
        """,
        "rules.yaml": """
            rules:
              - {id: iraq, title: Police in Iraq, query: 'RCMP AND Iraq', notify: [desk]}
        """,
    }
    for name, text in files.items():
        path = directory / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        path.chmod(0o644)


@contextmanager
def volume() -> Iterator[str]:
    name = f"newswatch-smoke-{uuid.uuid4().hex[:8]}"
    podman("volume", "create", name)
    try:
        yield name
    finally:
        podman("volume", "rm", "--force", name, check=False)


def smoke(image: str) -> None:
    with ExitStack() as stack:
        feeds = stack.enter_context(FeedServer())
        slack = stack.enter_context(SlackEmulator())
        config = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        data = stack.enter_context(volume())
        port = free_port()
        write_config(config, feeds.serve("/news.xml", rss([OLD])), slack, port)
        mounts = [
            "-v",
            f"{config}:/config:ro",
            "-v",
            f"{data}:/data",
            "-e",
            f"SLACK_TEST_TOKEN={TOKEN}",
        ]

        version = podman("run", "--rm", *HARDENED, image, "--version").stdout.strip()
        print(f"version: {version}")
        if not version.startswith("newswatch"):
            raise SmokeFailure(f"unexpected --version output {version!r}")

        uid = podman("run", "--rm", "--entrypoint", "id", image, "-u").stdout.strip()
        print(f"uid: {uid}")
        if uid == "0":
            raise SmokeFailure("the image runs as root")

        once = ["run", "--rm", *HARDENED, *mounts, image, "once"]
        podman(*once)
        feeds.serve("/news.xml", rss([NEW[0], OLD]))
        podman(*once)
        if len(slack.messages) != 1:
            raise SmokeFailure(f"once: expected 1 Slack message, got {len(slack.messages)}")
        print("once: baseline, then 1 alert delivered")

        name = f"newswatch-smoke-{uuid.uuid4().hex[:8]}"
        podman("run", "-d", "--name", name, *HARDENED, *mounts, image)
        stack.callback(podman, "rm", "--force", "--time", "0", name, check=False)
        try:
            wait_until(
                "the daemon to be healthy",
                lambda: podman("healthcheck", "run", name, check=False).returncode == 0,
                timeout=60,
            )
            status = podman("inspect", "-f", "{{.State.Healthcheck.Status}}", name).stdout.strip()
            print(f"daemon: {status}")
            feeds.serve("/news.xml", rss([NEW[1], NEW[0], OLD]))
            if len(slack.wait_for(2, timeout=30)) < 2:
                raise SmokeFailure("daemon: the new item was not alerted")
            print("daemon: alert delivered")
            started = time.monotonic()
            podman("stop", "--time", "10", name, timeout=30)
            took = time.monotonic() - started
            code = podman("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
            print(f"daemon: stopped in {took:.1f}s, exit code {code}")
            if code != "0" or took >= 10:
                raise SmokeFailure(f"daemon: stop took {took:.1f}s with exit code {code}")
        except SmokeFailure:
            print(podman("logs", name, check=False).stderr[-4000:], file=sys.stderr)
            raise


def main() -> int:
    default = os.environ.get("IMAGE", "localhost/newswatch:smoke")
    image = sys.argv[1] if len(sys.argv) > 1 else default
    try:
        smoke(image)
    except (SmokeFailure, subprocess.TimeoutExpired) as err:
        print(f"container smoke test FAILED: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
