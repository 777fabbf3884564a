"""/healthz rules (README, "Running the daemon") and the tiny HTTP/1.1 responder, over a
real loopback socket."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.service.health import (
    HealthServer,
    Limits,
    Probe,
    Request,
    Snapshot,
    authorized,
    evaluate,
    json_response,
    last_read,
    metrics_response,
)
from bot.store import FeedState, OutboxCounts

T0 = datetime(2026, 1, 1, tzinfo=UTC)
COUNTS = OutboxCounts(pending=3, dead=1)


def test_healthy_when_the_poll_job_ran_within_twice_its_interval() -> None:
    health = evaluate(
        T0 + timedelta(minutes=5), T0, T0 + timedelta(minutes=5, seconds=-9), 5.0, True, COUNTS
    )
    assert health.status == 200
    assert health.body == {
        "status": "ok",
        "last_poll": "2026-01-01T00:04:51+00:00",
        "last_read": None,
        "store_ok": True,
        "outbox": {"pending": 3, "dead": 1},
    }


def test_unhealthy_when_the_poll_job_is_late() -> None:
    health = evaluate(T0 + timedelta(minutes=5), T0, T0 + timedelta(minutes=4), 5.0, True, COUNTS)
    assert health.status == 503
    assert health.body["status"] == "unhealthy"
    assert "poll job" in health.body["reason"]


def test_a_young_process_is_healthy_before_its_first_poll() -> None:
    assert evaluate(T0 + timedelta(seconds=8), T0, None, 5.0, True, COUNTS).status == 200
    assert evaluate(T0 + timedelta(seconds=11), T0, None, 5.0, True, COUNTS).status == 503


def test_unhealthy_when_the_event_loop_stopped_beating() -> None:
    health = evaluate(T0, T0, T0, 5.0, True, COUNTS, loop_lag=12.4, stall_after=10.0)
    assert health.status == 503
    assert health.body["reason"] == "event loop stalled for 12s"
    assert evaluate(T0, T0, T0, 5.0, True, COUNTS, loop_lag=9.0, stall_after=10.0).status == 200


def test_unhealthy_when_the_store_does_not_answer() -> None:
    health = evaluate(T0, T0, T0, 5.0, False, None)
    assert health.status == 503
    assert health.body["store_ok"] is False and health.body["outbox"] is None
    assert health.body["reason"] == "store not answering"


HOUR = 3600.0


def _at(minutes: float, last_read: datetime | None, started: datetime = T0) -> dict[str, object]:
    """The /healthz body ``minutes`` after T0 of a daemon started at ``started`` that polls
    every 5 s and last read a feed at ``last_read``, degraded after an hour."""
    now = T0 + timedelta(minutes=minutes)
    health = evaluate(
        now, started, now, 5.0, True, COUNTS, last_read=last_read, degraded_after=HOUR
    )
    assert health.status == 200  # degraded is not down: restarting would not help
    return health.body


def test_degraded_when_no_feed_was_read_for_longer_than_the_window() -> None:
    body = _at(61, T0)
    assert body["status"] == "degraded"
    assert body["reason"] == "no feed has been read for 3660s"
    assert body["last_read"] == "2026-01-01T00:00:00+00:00"
    assert _at(59, T0)["status"] == "ok"
    assert "reason" not in _at(59, T0)


def test_not_degraded_before_any_feed_was_tried_nor_without_feeds() -> None:
    assert _at(600, None)["status"] == "ok"


def test_a_restarted_daemon_gets_a_full_window_before_it_is_degraded() -> None:
    restarted = T0 + timedelta(hours=5)
    assert _at(5 * 60 + 30, T0, started=restarted)["status"] == "ok"
    assert _at(6 * 60 + 1, T0, started=restarted)["status"] == "degraded"


def test_unhealthy_outranks_degraded() -> None:
    health = evaluate(
        T0 + timedelta(hours=2), T0, None, 5.0, True, COUNTS, last_read=T0, degraded_after=HOUR
    )
    assert (health.status, health.body["status"]) == (503, "unhealthy")
    assert "poll job" in health.body["reason"]


def test_last_read_is_the_newest_success_or_else_the_first_failure() -> None:
    def state(name: str, success: int | None, failing: int | None) -> FeedState:
        return FeedState(
            name,
            f"https://{name}.example/feed",
            last_success_at=None if success is None else T0 + timedelta(minutes=success),
            failing_since=None if failing is None else T0 + timedelta(minutes=failing),
        )

    assert last_read([state("a", 5, 30), state("b", 20, None), state("c", None, 1)]) == (
        T0 + timedelta(minutes=20)
    )
    assert last_read([state("a", None, 30), state("b", None, 10)]) == T0 + timedelta(minutes=10)
    assert last_read([state("new", None, None)]) is None
    assert last_read([]) is None


async def _request(port: int, raw: bytes) -> tuple[str, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status, headers, body


@pytest.fixture
def serve():
    """Runs ``check(port)`` against a HealthServer on a free port, inside one event loop."""

    def run(check, routes=None, limits=None):
        async def main():
            health = evaluate(T0, T0, T0, 5.0, True, COUNTS)

            async def healthz(request):
                return json_response(health)

            async def metrics(request):
                return metrics_response(b"newswatch_up 1\n")

            async def broken(request):
                raise RuntimeError("boom")

            server = HealthServer(
                "127.0.0.1",
                0,
                routes or {"/healthz": healthz, "/metrics": metrics, "/broken": broken},
                limits,
            )
            port = await server.start()
            assert port != 0
            try:
                return await check(port)
            finally:
                await server.close()

        return asyncio.run(main())

    return run


def test_healthz_answers_json(serve) -> None:
    status, headers, body = serve(
        lambda port: _request(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    )
    assert status == "HTTP/1.1 200 OK"
    assert headers["Content-Type"] == "application/json"
    assert headers["Connection"] == "close"
    assert int(headers["Content-Length"]) == len(body)
    assert json.loads(body)["outbox"] == {"pending": 3, "dead": 1}


def test_metrics_answers_prometheus_text(serve) -> None:
    status, headers, body = serve(lambda port: _request(port, b"GET /metrics?x=1 HTTP/1.1\r\n\r\n"))
    assert status == "HTTP/1.1 200 OK"
    assert headers["Content-Type"].startswith("text/plain; version=")
    assert body == b"newswatch_up 1\n"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
        (b"POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
        (b"garbage\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (b"GET /broken HTTP/1.1\r\n\r\n", "HTTP/1.1 500 Internal Server Error"),
        (
            b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 10_000 + b"\r\n\r\n",
            "HTTP/1.1 431 Request Header Fields Too Large",
        ),
    ],
)
def test_bad_requests_get_a_status_not_a_hang(serve, raw: bytes, status: str) -> None:
    assert serve(lambda port: _request(port, raw))[0] == status


def test_head_sends_headers_only(serve) -> None:
    status, headers, body = serve(lambda port: _request(port, b"HEAD /healthz HTTP/1.1\r\n\r\n"))
    assert status == "HTTP/1.1 200 OK" and int(headers["Content-Length"]) > 0
    assert body == b""


GET_HEALTHZ = b"GET /healthz HTTP/1.1\r\n\r\n"


async def _status_once_served(port: int, raw: bytes, within: float = 10) -> str:
    """The status line of the first answer: the server may close new sockets for a while
    (at its connection cap, out of file descriptors) until it notices the old ones closed."""
    deadline = time.monotonic() + within
    while True:
        try:
            status = (await _request(port, raw))[0]
        except ConnectionError:
            status = ""
        if status or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.01)


def test_connections_beyond_the_cap_are_closed_at_once(serve) -> None:
    """Idle sockets hold at most ``max_connections`` slots; /healthz answers once they go."""

    async def check(port: int) -> tuple[bytes, str]:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        refused = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        for _, idle_writer in idle:
            idle_writer.close()
        return refused, await _status_once_served(port, GET_HEALTHZ)

    refused, status = serve(check, limits=Limits(max_connections=3, head_timeout=60))
    assert refused == b""
    assert status == "HTTP/1.1 200 OK"


def test_a_slowloris_is_dropped_after_the_head_timeout(serve) -> None:
    """One byte every 10 ms would take a minute; the server answers 408 after 0.3 s."""

    async def check(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def trickle() -> None:
            for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 6000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.01)

        sending = asyncio.create_task(trickle())
        try:
            return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            writer.close()

    head = serve(check, limits=Limits(head_timeout=0.3))
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


@pytest.mark.parametrize(
    ("token", "authorization", "allowed"),
    [
        (None, None, True),
        ("s3cret-token", "Bearer s3cret-token", True),
        ("s3cret-token", "bearer s3cret-token", True),
        ("s3cret-token", None, False),
        ("s3cret-token", "Bearer s3cret-tokeN", False),
        ("s3cret-token", "Bearer ", False),
        ("s3cret-token", "Basic s3cret-token", False),
        ("s3cret-token", "Bearer s3cret-token-longer", False),
    ],
)
def test_bearer_token(token: str | None, authorization: str | None, allowed: bool) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    assert authorized(Request("GET", "/metrics", headers), token) is allowed


def test_a_snapshot_renders_at_most_once_per_interval() -> None:
    now = [100.0]
    snapshot = None

    async def render() -> bytes:
        await asyncio.sleep(0)  # concurrent scrapes arrive while this one renders
        return f"render {snapshot.renders + 1}".encode()

    snapshot = Snapshot(render, 5.0, clock=lambda: now[0])

    async def scrapes() -> list[bytes]:
        got = list(await asyncio.gather(*(snapshot.get() for _ in range(10))))
        now[0] = 104.9
        got.append(await snapshot.get())
        now[0] = 105.0
        got.append(await snapshot.get())
        return got

    assert asyncio.run(scrapes()) == [b"render 1"] * 11 + [b"render 2"]
    assert snapshot.renders == 2


def test_a_stuck_probe_times_out_and_later_waiters_share_it() -> None:
    release = threading.Event()
    calls = []

    def stuck() -> str:
        calls.append(1)
        release.wait(10)
        return "answered"

    probe = Probe("test-probe")

    async def ask() -> str:
        return await probe.run(stuck, 0.05)

    for _ in range(3):
        with pytest.raises(TimeoutError):
            asyncio.run(ask())
    assert len(calls) == 1
    release.set()
    assert asyncio.run(probe.run(stuck, 5)) == "answered"


EMFILE_SERVER = """
import asyncio, concurrent.futures.thread, os, resource, sys
from bot.service.health import HealthServer, Limits, Response

async def ok(request):
    return Response(200, "text/plain", b"ok\\n")

async def main():
    limits = Limits(accept_log_every=3600, accept_backoff=0.001, accept_backoff_max=0.01,
                    head_timeout=60)
    server = HealthServer("127.0.0.1", 0, {"/": ok}, limits)
    port = await server.start()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 1, hard))
    print(port, flush=True)
    while server.failures.total < 50:
        await asyncio.sleep(0.01)
    print(server.failures.total, flush=True)
    sys.stdin.read()  # blocks this loop, not the server's
    await server.close()

asyncio.run(main())
"""


def test_out_of_file_descriptors_logs_once_per_interval_and_recovers(tmp_path) -> None:
    """EMFILE on accept: one log line for 50 failures, and /healthz answers once fds free up."""
    import socket

    from tests.conftest import REPO

    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-c", EMFILE_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        cwd=REPO,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    clients: list[socket.socket] = []
    try:
        port = int(proc.stdout.readline())
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        failures = int(proc.stdout.readline())
        for client in clients:
            client.close()

        recovered = _status_once_served(port, b"GET / HTTP/1.1\r\n\r\n")
        assert asyncio.run(recovered) == "HTTP/1.1 200 OK"
        proc.stdin.close()
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
    log.seek(0)
    lines = log.read().splitlines()
    assert failures >= 50
    assert len(lines) == 1, lines
    assert "cannot accept connections: Too many open files (1 failed accepts" in lines[0]
