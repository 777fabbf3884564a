"""/healthz rules (SPEC §8) and the tiny HTTP/1.1 responder, over a real loopback socket."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.health import HealthServer, evaluate, json_response, metrics_response
from bot.store import OutboxCounts

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


def test_unhealthy_when_the_store_does_not_answer() -> None:
    health = evaluate(T0, T0, T0, 5.0, False, None)
    assert health.status == 503
    assert health.body["store_ok"] is False and health.body["outbox"] is None
    assert health.body["reason"] == "store not answering"


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

    def run(check, routes=None):
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
