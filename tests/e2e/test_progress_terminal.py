"""`newswatch once` on a real terminal (a pty): a warning logged mid-run does not mangle the bar.

The failing feed answers only once the terminal shows the bar, so the warning
is written while the bar is on screen: an event, not a race.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from tests.conftest import ConfigDir
from tests.paths import REPO
from tests.peers.feed_server import FeedServer
from tests.peers.httpbase import QuietHandler
from tests.peers.rss import Entry, rss

DEADLINE = 60.0  # seconds for the whole run


def _on_terminal(args: list[str], on_output: Callable[[bytes], None]) -> tuple[int, bytes]:
    """Run ``python -m bot *args`` with a pty as its terminal; feed its output to
    ``on_output`` as it comes; its exit code and everything it wrote."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    environment["COLUMNS"] = "200"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=environment,
        cwd=REPO,
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal closed it
                break
            if not chunk:
                break
            output += chunk
            on_output(output)
        else:
            raise AssertionError(f"no end after {DEADLINE}s; output: {output!r}")
        return proc.wait(timeout=DEADLINE), output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_a_warning_logged_while_the_bar_is_shown_clears_it_and_the_bar_is_redrawn(
    config_dir: ConfigDir, feed_server: FeedServer
) -> None:
    bar_shown = threading.Event()

    def fails_once_the_bar_is_shown(request: QuietHandler) -> None:
        bar_shown.wait(DEADLINE)
        request.send_response(500)
        request.send_header("Content-Length", "0")
        request.end_headers()

    ok = feed_server.serve(
        "/ok.xml", rss([Entry("Budget tabled", "Nothing.", "https://n.example/1")])
    )
    failing = feed_server.serve("/failing.xml", b"", custom=fails_once_the_bar_is_shown)
    config_dir.write(
        "settings.yaml",
        f"""
        store: sqlite:{config_dir.store}
        http: {{timeout: 30s}}
        feeds: [{{id: ok, url: '{ok}'}}, {{id: failing, url: '{failing}'}}]
        destinations: {{desk: {{type: console}}}}
        """,
    )
    config_dir.write("rules.yaml", "rules: [{id: r, title: R, query: police, notify: [desk]}]\n")

    def watch(output: bytes) -> None:
        if b"1/2 feeds" in output:
            bar_shown.set()

    code, output = _on_terminal(["--config", str(config_dir.path), "once"], watch)
    text = output.decode()
    assert code == 0, text
    assert bar_shown.is_set(), text
    # The bar, then blanks over its whole width and a return, then the warning on a
    # clean line, then the bar again below it.
    found = re.search(
        r"\r(\[[#.]{24}\] 1/2 feeds[^\r\n]*)\r( +)\r"
        r"(\d{4}-\d\d-\d\dT[^\r\n]* WARNING [^\r\n]*feed failing failed[^\r\n]*)\r?\n"
        r"\r\[[#.]{24}\] 1/2 feeds",
        text,
    )
    assert found, repr(text)
    bar, blanks, record = found.groups()
    assert len(blanks) >= len(bar.rstrip())
    assert "[" not in record  # nothing of the bar is left on the warning's line
    assert "2 feeds polled, 1 failed" in text
