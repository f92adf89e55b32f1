"""Alerts end to end on the real parts: matches found by a real scan, a webhook receiver (http.server) and an SMTP
server (aiosmtpd) on loopback, which the SSRF guard admits only with ``fetch.allow_private_networks``."""

from __future__ import annotations

import base64
import email
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from typer.testing import CliRunner

from likeness.alerts import deliver, honeypots, rules, webhook
from likeness.cli.main import app as cli
from likeness.errors import BlockedAddress
from likeness.services import honeypots as planting
from likeness.services import scan, subjects
from likeness.services.app import App, open_app
from likeness.settings import AlertSettings, FaceSettings, FetchSettings, Settings, get_settings
from likeness.store.models import AlertDelivery, AlertRule, Match
from tests import images


@dataclass
class Receiver:
    """A webhook receiver: every POST kept (path, headers, body); answers ``status``."""

    status: int = 200
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def bodies(self, path: str = "/") -> list[dict[str, Any]]:
        return [json.loads(body) for p, _, body in self.posts if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.posts.append((self.path, dict(self.headers), body))
            self.send_response(got.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield got
    server.shutdown()
    server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.raw.append(envelope.content)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    with socket.socket() as probe:  # aiosmtpd's Controller cannot take port 0: ask the OS for a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def alert_settings(settings: Settings, mailbox: tuple[Mailbox, int]) -> Settings:
    alerts = AlertSettings(
        smtp_host="127.0.0.1", smtp_port=mailbox[1], smtp_starttls=False, retries=2, backoff_s=0.01, max_attempts=2
    )
    fetch = FetchSettings(allow_private_networks=True)  # the receivers are on loopback
    return settings.model_copy(update={"alerts": alerts, "fetch": fetch})


def _open(settings: Settings) -> Iterator[App]:
    instance = open_app(settings)
    yield instance
    instance.close()


@pytest.fixture
def alert_app(alert_settings: Settings) -> Iterator[App]:
    yield from _open(alert_settings)


def _enroll_astronaut(app: App) -> int:
    photo = subjects.Photo("ref.jpg", images.encode(images.astronaut_face_crop()))
    return subjects.enroll(app, "Eileen", [photo], actor="test", force_new=True).subject_id


def _webhook(app: App, url: str, tier: str = "low") -> str:
    with app.store.transaction() as session:
        return rules.add_webhook(session, url, tier, actor="test")[1]


def _match_ids(app: App) -> list[int]:
    with app.store.transaction() as session:
        return sorted(session.scalars(select(Match.id)))


def _ids_in_mail(box: Mailbox) -> list[int]:
    text = "".join(str(m.get_payload(decode=True), "utf-8") for m in box.messages)
    return sorted(int(n) for n in re.findall(r"- match (\d+):", text))


def test_each_new_match_is_told_once_by_signed_webhook_and_email_digest(
    alert_app: App, receiver: Receiver, mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    box = mailbox[0]
    _enroll_astronaut(alert_app)
    secret = _webhook(alert_app, receiver.url + "/")
    with alert_app.store.transaction() as session:
        rules.add_email(session, ["reviewer@example.org"], "low", actor="test")
    folder = tmp_path / "scan"
    files = [
        images.write(folder / "a.jpg", images.resize(images.astronaut(), 0.9)),
        images.write(folder / "b.jpg", images.resize(images.astronaut(), 0.7)),
        images.write(folder / "coffee.jpg", images.NO_FACE["coffee"]()),
    ]
    scan.scan(alert_app, [str(folder)], actor="test")
    deliver.send_due(alert_app.store, alert_app.settings)
    matches = _match_ids(alert_app)
    assert len(matches) == 2
    assert sorted(b["match"]["id"] for b in receiver.bodies()) == matches
    assert _ids_in_mail(box) == matches and len(box.messages) == 1  # one digest for both

    # the same bytes at a new place: the media is matched again, but no match is new, so nothing is told again
    (folder / "again.jpg").write_bytes(files[0].read_bytes())
    scan.scan(alert_app, [str(folder)], actor="test")
    deliver.send_due(alert_app.store, alert_app.settings)
    assert _match_ids(alert_app) == matches
    assert sorted(b["match"]["id"] for b in receiver.bodies()) == matches
    assert _ids_in_mail(box) == matches

    for _, headers, body in receiver.posts:
        assert webhook.verify(secret, headers["X-Likeness-Timestamp"], body, headers["X-Likeness-Signature"])
        assert not webhook.verify(
            "another secret", headers["X-Likeness-Timestamp"], body, headers["X-Likeness-Signature"]
        )
    _assert_no_picture([body for _, _, body in receiver.posts] + box.raw, files)


def _assert_no_picture(sent: list[bytes], files: list[Path]) -> None:
    """Not the file, nor any 48 bytes of it, raw or in base64 (an attachment or a data: URL)."""
    for path in files:
        data = path.read_bytes()
        chunks = [data[i : i + 48] for i in range(0, len(data) - 48, max(1, len(data) // 20))]
        for message in sent:
            for chunk in chunks:
                assert chunk not in message
                assert base64.b64encode(chunk)[:60] not in message


@pytest.fixture
def strict_tier_app(alert_settings: Settings) -> Iterator[App]:
    """Tiers set so that a resized copy lands below "high" (the low tier as calibrated, so it still matches)."""
    faces = FaceSettings(tier_medium=0.99999, tier_high=0.999999)
    yield from _open(alert_settings.model_copy(update={"faces": faces}))


def test_matches_below_a_rules_tier_are_not_told(strict_tier_app: App, receiver: Receiver, tmp_path: Path) -> None:
    app = strict_tier_app
    _enroll_astronaut(app)
    for tier in ("low", "medium", "high"):
        _webhook(app, f"{receiver.url}/{tier}", tier)
    images.write(tmp_path / "scan" / "a.jpg", images.resize(images.astronaut(), 0.8))
    scan.scan(app, [str(tmp_path / "scan")], actor="test")
    deliver.send_due(app.store, app.settings)
    with app.store.transaction() as session:
        tiers = {i: t for i, t in session.execute(select(Match.id, Match.tier))}
    assert tiers and "high" not in tiers.values()
    assert sorted(b["match"]["id"] for b in receiver.bodies("/low")) == sorted(tiers)
    assert sorted(b["match"]["id"] for b in receiver.bodies("/medium")) == sorted(
        i for i, t in tiers.items() if t == "medium"
    )
    assert receiver.bodies("/high") == []


@pytest.fixture
def honeypot_app(alert_settings: Settings) -> Iterator[App]:
    yield from _open(
        alert_settings.model_copy(update={"alerts": alert_settings.alerts.model_copy(update={"honeypot_grace_s": 0})})
    )


def test_a_missed_honeypot_alerts_once_and_failed_sends_are_recorded(honeypot_app: App, receiver: Receiver) -> None:
    app = honeypot_app
    _webhook(app, receiver.url + "/")
    planted = planting.plant(app, actor="test")
    assert {p.picture for p in planted} == set(honeypots.PICTURES)
    assert all(Path(p.location).is_file() for p in planted)

    receiver.status = 503  # the receiver is down: a send is retried, recorded as failed for now, the rest wait
    checked = planting.check(app, actor="test", scan_folder=False)  # the pipeline never looked: both missed
    assert sorted(m.plant_id for m in checked.missed) == sorted(p.plant_id for p in planted)
    assert len(receiver.posts) == 2  # alerts.retries = 2, on the first delivery only
    assert _deliveries(app) == [("pending", 1, True), ("pending", 0, False)]
    with app.store.transaction() as session:
        assert len(honeypots.missed(session)) == len(planted)  # what /health reports
    deliver.send_due(app.store, app.settings)  # still down: out of attempts (alerts.max_attempts = 2)
    assert _deliveries(app) == [("failed", 2, True), ("pending", 0, False)]

    receiver.status, receiver.posts = 200, []
    planting.check(app, actor="test", scan_folder=False)
    planting.check(app, actor="test", scan_folder=False)  # still missed, but told once per rule and plant
    told = receiver.bodies()
    assert [b["event"] for b in told] == ["honeypot_missed"]
    assert _deliveries(app) == [("failed", 2, True), ("sent", 1, False)]


def _deliveries(app: App) -> list[tuple[str, int, bool]]:
    """(status, attempts, whether an HTTP 503 is the recorded error) of each delivery, oldest first."""
    with app.store.transaction() as session:
        rows = session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)).all()
        return [(r.status, r.attempts, "503" in (r.last_error or "")) for r in rows]


def test_found_honeypots_pass_and_are_never_alerted_as_matches(honeypot_app: App, receiver: Receiver) -> None:
    app = honeypot_app
    _webhook(app, receiver.url + "/")
    planted = planting.plant(app, actor="test")
    checked = planting.check(app, actor="test")
    assert checked.scanned == len(planted) and checked.missed == []
    with app.store.transaction() as session:
        assert honeypots.missed(session) == []
        found = set(session.scalars(select(Match.subject_id)))
        assert found == {p.subject_id for p in planted}
        assert session.scalar(select(func.count()).select_from(AlertDelivery)) == 0
    assert receiver.posts == []


def test_removing_a_rule_shreds_its_sealed_target(alert_app: App, receiver: Receiver) -> None:
    _webhook(alert_app, receiver.url + "/hook?token=abc")
    with alert_app.store.transaction() as session:
        row = session.scalars(select(AlertRule)).one()
        assert b"token=abc" not in row.target_enc and b"127.0.0.1" not in row.target_enc
        rule_id, key_id = row.id, row.key_id
        assert rules.list_rules(session)[0].shown() == receiver.url + "/hook"
    with alert_app.store.transaction() as session:
        rules.remove_rule(session, rule_id, actor="test")
    assert alert_app.store.box.key(key_id) is None
    with alert_app.store.transaction() as session:
        assert rules.list_rules(session) == []


def test_a_subject_facing_rule_is_sealed_with_the_subjects_key_and_goes_with_them(alert_app: App) -> None:
    subject_id = _enroll_astronaut(alert_app)
    with alert_app.store.transaction() as session:
        rule = rules.add_email(session, ["eileen@example.org"], "low", actor="test", subject_id=subject_id)
        row = session.get(AlertRule, rule.id)
        assert row is not None and not row.locations  # no where-found URLs in a subject's mailbox by default
        key_id = row.key_id
    subjects.withdraw(alert_app, subject_id, actor="test")
    assert alert_app.store.box.key(key_id) is None  # the address is shredded with the subject's data
    with alert_app.store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AlertRule)) == 0


def test_webhooks_to_loopback_are_refused_without_allow_private_networks(settings: Settings) -> None:
    with pytest.raises(BlockedAddress):
        webhook.post("http://127.0.0.1:9/", "s", {"event": "test"}, 1, settings)


def test_the_cli_adds_lists_tests_and_removes_a_rule(
    settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIKENESS_HOME", str(settings.home))
    monkeypatch.setenv("LIKENESS_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("LIKENESS_FETCH__ALLOW_PRIVATE_NETWORKS", "true")
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        get_settings.cache_clear()
        result = runner.invoke(cli, list(args))
        get_settings.cache_clear()
        return result.exit_code, result.stdout

    code, said = invoke("alerts", "add", "webhook", receiver.url + "/", "--min-tier", "high")
    assert code == 0, said
    secret = said.split("shown once): ")[1].strip()
    code, said = invoke("alerts", "list", "--json")
    assert code == 0 and json.loads(said)[0]["min_tier"] == "high" and secret not in said
    assert invoke("alerts", "test", "1")[0] == 0
    (_, headers, body), *_ = receiver.posts
    assert json.loads(body)["event"] == "test"
    assert webhook.verify(secret, headers["X-Likeness-Timestamp"], body, headers["X-Likeness-Signature"])
    assert invoke("alerts", "send")[0] == 0
    assert invoke("alerts", "remove", "1")[0] == 0
    assert json.loads(invoke("alerts", "list", "--json")[1]) == []

    code, said = invoke("honeypot", "plant")
    assert code == 0 and said.count("planted") == len(honeypots.PICTURES)
    assert invoke("honeypot", "check", "--no-scan")[0] == 0  # within their grace period: not missed yet
    monkeypatch.setenv("LIKENESS_ALERTS__HONEYPOT_GRACE_S", "0")
    invoke("honeypot", "plant")
    code, said = invoke("honeypot", "check", "--no-scan")
    assert code == 1 and said.count("MISSED") == len(honeypots.PICTURES)


def test_the_queue_tasks_check_honeypots_and_send(honeypot_app: App, receiver: Receiver) -> None:
    """The blueprint's tasks on a procrastinate App (its in-memory connector: the wiring, not the queue, is tested
    here; tests/test_worker.py runs the real queue)."""
    from procrastinate import App as Queue
    from procrastinate.testing import InMemoryConnector

    from likeness.alerts import tasks

    _webhook(honeypot_app, receiver.url + "/")
    planted = planting.plant(honeypot_app, actor="test")
    queue = Queue(connector=InMemoryConnector())
    queue.add_tasks_from(tasks.blueprint, namespace="")
    tasks.use(honeypot_app.settings, honeypot_app.store)
    try:
        with queue.open():
            queue.tasks["likeness.alerts.honeypot_check"].defer(timestamp=0)
            queue.tasks["likeness.alerts.send"].defer()
            queue.run_worker(wait=False, queues=["io"], install_signal_handlers=False, listen_notify=False)
    finally:
        tasks.release()
    assert sorted(b["plant"]["id"] for b in receiver.bodies()) == sorted(p.plant_id for p in planted)


def test_email_digests_wait_for_their_window(honeypot_app: App, mailbox: tuple[Mailbox, int]) -> None:
    box = mailbox[0]
    with honeypot_app.store.transaction() as session:
        rules.add_email(session, ["ops@example.org"], "high", actor="test", digest_s=3600)
    planting.plant(honeypot_app, actor="test")
    planting.check(honeypot_app, actor="test", scan_folder=False)
    assert len(box.messages) == 1 and str(box.messages[0].get_payload()).count("honeypot") == len(honeypots.PICTURES)
    planting.plant(honeypot_app, actor="test")  # newer plants, missed as well: told in the next digest, not now
    with honeypot_app.store.transaction() as session:
        assert len(honeypots.alert_missed(session)) == len(honeypots.PICTURES)
    done = deliver.send_due(honeypot_app.store, honeypot_app.settings)
    assert (done.sent, done.waiting) == (0, len(honeypots.PICTURES)) and len(box.messages) == 1
