"""Figures for the feed corpus: files and items read by parse_feed vs plain feedparser, and
the CPU time of each per feed. Run: .venv/bin/python -m scripts.corpus_report [CORPUS_DIR]
(default: ``$NEWSWATCH_CORPUS``, see tests/paths.py)."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import feedparser

from bot.errors import FetchError
from bot.feeds.parse import parse_feed
from tests.paths import CORPUS

ROUNDS = 5


def cpu_ms(work: Callable[[], object]) -> float:
    """Mean CPU time of ``ROUNDS`` runs, in milliseconds (CPU, so other load does not count)."""
    started = time.process_time()
    for _ in range(ROUNDS):
        work()
    return (time.process_time() - started) * 1000 / ROUNDS


def ours(body: bytes) -> tuple[int, str]:
    try:
        parsed = parse_feed(body, feed_id="corpus", url="https://corpus.example/feed")
    except FetchError as error:
        return 0, error.reason
    return len(parsed.items), "warning" if parsed.warning else "ok"


def main(corpus: Path) -> None:
    files = sorted(p for p in corpus.glob("*") if p.suffix != ".tsv")
    totals = {"plain_items": 0, "our_items": 0, "plain_read": 0, "our_read": 0}
    plain_ms = our_ms = 0.0
    print(f"{'file':52} {'plain':>5} {'ours':>5}  status   {'plain ms':>8} {'ours ms':>8}")
    for path in files:
        body = path.read_bytes()
        plain = feedparser.parse(io.BytesIO(body))
        count, status = ours(body)
        p_ms = cpu_ms(lambda body=body: feedparser.parse(io.BytesIO(body)))
        o_ms = cpu_ms(lambda body=body: ours(body))
        plain_ms += p_ms
        our_ms += o_ms
        totals["plain_items"] += len(plain.entries)
        totals["our_items"] += count
        totals["plain_read"] += bool(not plain.bozo or plain.entries)
        totals["our_read"] += status in ("ok", "warning")
        name = path.name[:52]
        print(f"{name:52} {len(plain.entries):5} {count:5}  {status:8} {p_ms:8.2f} {o_ms:8.2f}")
    n = len(files)
    print(
        f"\n{n} files. Read: plain feedparser {totals['plain_read']}, parse_feed "
        f"{totals['our_read']}. Items: plain {totals['plain_items']}, parse_feed "
        f"{totals['our_items']}.\nCPU per feed (mean of {ROUNDS} runs): plain feedparser "
        f"(default sanitising) {plain_ms / n:.2f} ms, parse_feed {our_ms / n:.2f} ms "
        "(including HTML to text and keys)."
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS)
