"""`newswatch run` as a subprocess, watched through its JSON log: the e2e tests' daemon.

Every wait is a condition polled with a deadline (a log event, an HTTP answer),
never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import REPO, ConfigDir
from tests.peers.slack_emulator import TOKEN


class Daemon:
    """``python -m bot run`` with JSON logs in a file (a pipe could fill up and block it)."""

    def __init__(self, cfg: ConfigDir, log: Path, env: dict[str, str]) -> None:
        self.log_path = log
        environment = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
        environment.update({"SLACK_TEST_TOKEN": TOKEN, **env})
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                "--config",
                str(cfg.path),
                "--log-format",
                "json",
                "-v",
                "run",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=environment,
            cwd=REPO,
        )
        listening = self.wait_event("listening")
        self.url = f"http://127.0.0.1:{listening['port']}"

    def text(self) -> str:
        return self.log_path.read_text()

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"message": line})
        return out

    def wait_for(self, what: str, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate()
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.text()}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.text()}")

    def wait_event(self, event: str, count: int = 1, **fields: object) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            hits = [
                e
                for e in self.events()
                if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
            ]
            return hits[count - 1] if len(hits) >= count else None

        return self.wait_for(f"log event {event} x{count} {fields}", found)

    def get(
        self, path: str, *, timeout: float = 5, headers: dict[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        """GET ``path``; a server that does not answer within ``timeout`` fails the test."""
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.headers["Content-Type"], response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers["Content-Type"], err.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
