"""``/health`` and ``/v1/metrics`` read the queue and the counts from PostgreSQL: depth, oldest wait and worker
heartbeats after real deferrals; the absence of the queue's tables reported, not failed on; metrics as valid
Prometheus text behind the ``stats`` scope."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from likeness.services.app import App
from likeness.store.models import Subject
from tests.apiclient import anyio_backend, api, bearer, client, token
from tests.conftest import scalar
from tests.queueing import open_queue

__all__ = ["anyio_backend", "api", "client"]
pytestmark = pytest.mark.anyio


def _queue_work(app: App) -> None:
    """Three jobs waiting on ``analysis`` (one queued two minutes ago), one scheduled for later (not waiting yet),
    a live worker and one whose heartbeat stopped five minutes ago."""
    with open_queue(app) as queue:
        ids = [queue.configure_task("test.noop", queue="analysis").defer(n=n) for n in range(3)]
        queue.configure_task("test.noop", queue="io", schedule_in={"hours": 1}).defer(n=9)
    with app.store.transaction() as s:
        s.execute(
            text("UPDATE procrastinate_events SET at = now() - interval '120 s' WHERE job_id = :id"), {"id": ids[0]}
        )
        s.execute(text("INSERT INTO procrastinate_workers DEFAULT VALUES"))
        s.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '5 min')"))


async def test_health_reports_queue_depth_oldest_wait_and_workers(app: App, client: httpx.AsyncClient) -> None:
    empty = (await client.get("/health")).json()
    assert empty["status"] == "ok" and empty["queue"]["depth"] == 0 and empty["queue"]["oldest_age_s"] is None
    _queue_work(app)
    answer = await client.get("/health")  # no token
    assert answer.status_code == 200
    queue = answer.json()["queue"]
    assert queue["installed"] and queue["depth"] == 3 and queue["waiting"] == {"analysis": 3}
    assert queue["oldest_age_s"] >= 120
    assert [w["alive"] for w in queue["workers"]] == [True, False] and queue["workers_alive"] == 1
    assert queue["workers"][1]["heartbeat_age_s"] >= 300


async def test_health_says_when_the_queue_is_not_installed(app: App, client: httpx.AsyncClient) -> None:
    with app.store.transaction() as s:
        s.execute(text("DROP TABLE procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs CASCADE"))
    answer = await client.get("/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok" and answer.json()["queue"]["installed"] is False
    metrics = await client.get("/v1/metrics", headers=bearer(token(app, "admin")))
    assert metrics.status_code == 200 and "likeness_queue_installed 0.0" in metrics.text


async def test_health_is_unavailable_without_its_database(
    app: App, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = create_engine(app.store.engine.url.set(database="no_such_database"))
    monkeypatch.setattr(app.store, "sessions", sessionmaker(gone))
    answer = await client.get("/health")
    gone.dispose()
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "database": False, "queue": None, "honeypots_missed": None}


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


async def test_metrics_are_prometheus_text_behind_the_stats_scope(app: App, client: httpx.AsyncClient) -> None:
    _queue_work(app)
    with app.store.transaction() as s:
        key = app.store.box.new_key(s)
        s.add(Subject(key_id=key.id, name_enc=key.seal_text("someone"), engine="test", model="test"))
    assert (await client.get("/v1/metrics")).status_code == 401
    assert (await client.get("/v1/metrics", headers=bearer(token(app, "admin", scopes=["check"])))).status_code == 403
    answer = await client.get("/v1/metrics", headers=bearer(token(app, "reviewer")))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    found = _samples(answer.text)
    assert found[("likeness_queue_depth", ())] == 3
    assert found[("likeness_queue_jobs", (("queue", "analysis"), ("status", "todo")))] == 3
    assert found[("likeness_queue_jobs", (("queue", "io"), ("status", "todo")))] == 1  # scheduled: not waiting
    assert found[("likeness_queue_waiting", (("queue", "analysis"),))] == 3
    assert found[("likeness_queue_oldest_job_age_seconds", ())] >= 120
    assert found[("likeness_queue_workers", (("state", "alive"),))] == 1
    assert found[("likeness_queue_workers", (("state", "stale"),))] == 1
    assert found[("likeness_subjects", ())] == 1
    assert found[("likeness_media", (("outcome", "analysed"),))] == 0
    assert ("process_cpu_seconds_total", ()) in found or ("process_virtual_memory_bytes", ()) in found


async def test_a_missed_honeypot_fails_health(app: App, client: httpx.AsyncClient) -> None:
    from likeness.alerts import honeypots

    with app.store.transaction() as s:
        key = app.store.box.new_key(s)
        subject = Subject(key_id=key.id, name_enc=key.seal_text("honeypot"), engine="test", model="test")
        s.add(subject)
        s.flush()
        pot = honeypots.add_honeypot(s, subject.id, "astronaut", actor="test")
        honeypots.record_plant(s, pot.id, "0" * 64, "/honeypots/astronaut.jpg", grace_s=0)  # due now, never found
    answer = await client.get("/health")
    assert answer.status_code == 503
    assert answer.json()["status"] == "failing" and answer.json()["honeypots_missed"] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poll(url: str, proc: subprocess.Popen[bytes], ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """/health until ``ready`` says so (a deadline against a hang, not a timing assertion)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "likeness serve exited"
        try:
            found: dict[str, Any] = httpx.get(f"{url}/health", timeout=5).json()
            if ready(found):
                return found
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("likeness serve --workers did not come up")


def test_serve_runs_the_api_workers_and_the_scheduler(cli_env: dict[str, str], database_url: str) -> None:
    port = _free_port()
    code = "import sys; from likeness.cli.main import app; sys.exit(app())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", str(port), "--workers", "2"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _poll(url, proc, lambda h: h.get("queue", {}).get("workers_alive") == 2)
        # The workers run the periodic tasks: the scheduler's tick is queued for its slot once, by one of them.
        _poll(url, proc, lambda _: scalar(database_url, _TICKS) >= 1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=90)
    assert scalar(database_url, "SELECT count(*) FROM procrastinate_workers") == 0  # both stopped cleanly
    slots = (
        "SELECT count(DISTINCT defer_timestamp) FROM procrastinate_periodic_defers WHERE task_name = 'schedule.tick'"
    )
    assert scalar(database_url, _TICKS) == scalar(database_url, slots)  # one tick a slot, for two workers


_TICKS = "SELECT count(*) FROM procrastinate_periodic_defers WHERE task_name = 'schedule.tick'"
