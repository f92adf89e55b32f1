"""Abuse controls against real PostgreSQL: shared token buckets (two OS processes spend from one), trust that falls
and recovers, IP blocks (CIDR, expiry), bans and shadow holds, coordinated-attack and enumeration flags, the
append-only abuse log and the operator commands."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from likeness.abuse import (
    Admission,
    Caller,
    admit,
    observe_probe,
    observe_probes,
    observe_upload,
    operators,
    rejected,
    shadow_hold,
)
from likeness.errors import Conflict, Forbidden, InvalidInput, RateLimited
from likeness.services.app import App
from likeness.settings import AbuseSettings
from likeness.store.models import AbuseHeld, AbuseLogEntry, AbuseMeasure, AbuseProbe, Account, AuditEvent

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
WIDE = {"ip_rate_per_s": 1000.0, "ip_burst": 1000.0}  # tests of the token bucket leave the IP's out of the way


@contextmanager
def committed(app: App) -> Iterator[Session]:
    """A transaction committed even when the code under test raises, as the API must do around ``admit``."""
    with app.store.sessions() as session:
        try:
            yield session
        finally:
            session.commit()


def attempt(app: App, caller: Caller, settings: AbuseSettings, at: datetime, cost: float = 1.0) -> Any:
    with committed(app) as s:
        try:
            return admit(s, caller, settings, action="check", cost=cost, at=at)
        except (RateLimited, Forbidden) as exc:
            return exc


def account(app: App, name: str) -> int:
    with app.store.transaction() as s:
        row = Account(username=name, role="reviewer")
        s.add(row)
        s.flush()
        return row.id


def log_rows(app: App, decision: str) -> list[AbuseLogEntry]:
    with app.store.transaction() as s:
        return list(s.scalars(select(AbuseLogEntry).where(AbuseLogEntry.decision == decision)))


def test_a_token_bucket_admits_its_burst_then_refuses_with_retry_after_and_refills(app: App) -> None:
    settings = AbuseSettings(token_rate_per_s=1.0, token_burst=5.0, **WIDE)
    caller = Caller(1, 10, "192.0.2.1")
    answers = [attempt(app, caller, settings, T0) for _ in range(6)]
    assert all(isinstance(a, Admission) and not a.shadow_banned for a in answers[:5])
    assert isinstance(answers[5], RateLimited) and answers[5].retry_after == 1
    # the refusal cost trust (1 point), so the rate is now 0.99/s: 3 s later about 2.97 tokens are back
    later = [attempt(app, caller, settings, T0 + timedelta(seconds=3)) for _ in range(3)]
    assert [isinstance(a, Admission) for a in later] == [True, True, False]
    assert len(log_rows(app, "penalty")) == 2


def test_the_ip_bucket_holds_every_account_behind_one_address(app: App) -> None:
    settings = AbuseSettings(ip_rate_per_s=0.01, ip_burst=4.0)
    answers = [attempt(app, Caller(n, n, "198.51.100.7"), settings, T0) for n in range(1, 7)]
    assert [isinstance(a, Admission) for a in answers] == [True] * 4 + [False] * 2
    assert isinstance(attempt(app, Caller(9, 9, "198.51.100.8"), settings, T0), Admission)


_WORKER = """
import sys, time
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from likeness.abuse import Caller, admit
from likeness.errors import RateLimited
from likeness.settings import AbuseSettings

url, start, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
sessions = sessionmaker(create_engine(url))
settings = AbuseSettings(token_rate_per_s=0.001, token_burst=20, ip_rate_per_s=1000, ip_burst=1000)
while time.time() < start:
    time.sleep(0.005)
admitted = refused = 0
for _ in range(n):
    with sessions() as s:
        try:
            admit(s, Caller(7, 70, "203.0.113.5"), settings, action="check")
            admitted += 1
        except RateLimited:
            refused += 1
        s.commit()
print(admitted, refused)
"""


def test_two_processes_spend_from_one_bucket(app: App, database_url: str) -> None:
    """Two OS processes, 30 requests each, one token bucket of 20 (refill ~0): exactly 20 pass in all. Buckets
    kept in each process would let 40 through."""
    start = str(time.time() + 2.0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, database_url, start, "30"], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    results = [tuple(map(int, p.communicate(timeout=120)[0].split())) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(a for a, _ in results) == 20 and sum(r for _, r in results) == 40
    assert len(log_rows(app, "penalty")) == 40  # every refusal was logged and cost trust, from both processes


def test_trust_falls_on_rejected_inputs_slows_the_caller_and_recovers_slowly(app: App) -> None:
    settings = AbuseSettings(token_rate_per_s=10.0, token_burst=10.0, **WIDE)
    bad, good = Caller(2, 20, "192.0.2.2"), Caller(3, 30, "192.0.2.3")
    with committed(app) as s:
        for _ in range(9):
            rejected(s, bad, "nsfw", settings=settings, at=T0)  # 10 points each
    assert attempt(app, bad, settings, T0).trust == pytest.approx(10.0)
    # trust 10: a bucket of 1 token (10 x 0.1), where a trusted caller has 10
    assert isinstance(attempt(app, bad, settings, T0), RateLimited)
    assert sum(isinstance(attempt(app, good, settings, T0), Admission) for _ in range(11)) == 10
    # 5 points an hour: 10 hours later 50 more, less the 1 point the refusal cost
    assert attempt(app, bad, settings, T0 + timedelta(hours=10)).trust == pytest.approx(59.0)
    assert attempt(app, bad, settings, T0 + timedelta(days=3)).trust == 100.0


def test_unknown_reasons_cost_the_default_penalty_and_trust_never_goes_below_zero(app: App) -> None:
    settings = AbuseSettings(default_penalty=30.0)
    caller = Caller(None, None, "192.0.2.9")  # no account: the IP alone carries the trust
    with committed(app) as s:
        for _ in range(5):
            rejected(s, caller, "something else", settings=settings, at=T0)
    assert attempt(app, caller, settings, T0).trust == 0.0


def test_a_blocked_network_is_refused_until_the_block_expires_or_is_lifted(app: App) -> None:
    settings = AbuseSettings()
    with committed(app) as s:
        ten = operators.block(s, "10.0.0.0/8", actor="cli", duration_s=60, at=T0)
        one = operators.block(s, "2001:db8::1", actor="cli", at=T0)
    assert isinstance(attempt(app, Caller(4, 40, "10.20.30.40"), settings, T0), Forbidden)
    assert isinstance(attempt(app, Caller(4, 40, "::ffff:10.20.30.40"), settings, T0), Forbidden)
    assert isinstance(attempt(app, Caller(4, 40, "11.0.0.1"), settings, T0), Admission)
    assert isinstance(attempt(app, Caller(4, 40, "10.20.30.40"), settings, T0 + timedelta(seconds=61)), Admission)
    assert isinstance(attempt(app, Caller(4, 40, "2001:db8::1"), settings, T0), Forbidden)
    assert isinstance(attempt(app, Caller(4, 40, "testclient"), settings, T0), Admission)  # not an address
    with committed(app) as s:
        operators.lift(s, one, actor="user:1", at=T0)
    assert isinstance(attempt(app, Caller(4, 40, "2001:db8::1"), settings, T0), Admission)
    blocked = log_rows(app, "blocked")
    assert len(blocked) == 3 and {r.measure_id for r in blocked} == {ten, one}
    assert [r.actor for r in log_rows(app, "lift")] == ["user:1"]
    with committed(app) as s, pytest.raises(InvalidInput):
        operators.block(s, "10.0.0.300", actor="cli")


def test_a_banned_account_is_refused_and_a_shadow_banned_one_is_held_not_processed(app: App) -> None:
    settings = AbuseSettings()
    banned, shadowed = account(app, "banned"), account(app, "shadowed")
    with committed(app) as s:
        operators.ban(s, banned, actor="cli", shadow=False, at=T0)
        shadow_id = operators.ban(s, shadowed, actor="cli", shadow=True, at=T0)
    assert isinstance(attempt(app, Caller(banned, 1, "192.0.2.4"), settings, T0), Forbidden)
    admission = attempt(app, Caller(shadowed, 2, "192.0.2.5"), settings, T0)
    assert isinstance(admission, Admission) and admission.shadow_banned
    sha = hashlib.sha256(b"picture").hexdigest()
    with committed(app) as s:
        held_id = shadow_hold(s, Caller(shadowed, 2, "192.0.2.5"), "check", {"sha256": sha, "bytes": 7}, at=T0)
        with pytest.raises(InvalidInput):
            shadow_hold(s, Caller(shadowed, 2, "192.0.2.5"), "check", {"image": b"\xff\xd8"}, at=T0)
        with pytest.raises(InvalidInput):
            shadow_hold(s, Caller(shadowed, 2, "192.0.2.5"), "check", {"image": "A" * 10_000}, at=T0)
    with app.store.transaction() as s:
        held = s.get(AbuseHeld, held_id)
        assert held is not None and held.detail == {"sha256": sha, "bytes": 7} and held.account_id == shadowed
        audit = list(s.scalars(select(AuditEvent.action).where(AuditEvent.entity == "account")))
    assert audit == ["abuse.ban", "abuse.shadow_ban"]
    with committed(app) as s:
        operators.lift(s, shadow_id, actor="cli", at=T0)
        with pytest.raises(Conflict):
            operators.lift(s, shadow_id, actor="cli", at=T0)
    assert not attempt(app, Caller(shadowed, 2, "192.0.2.5"), settings, T0).shadow_banned


def _flip(pdq: bytes, bits: int) -> bytes:
    flipped = bytearray(pdq)
    for bit in range(bits):
        flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def test_the_same_picture_from_three_accounts_within_an_hour_is_flagged_once(app: App) -> None:
    settings = AbuseSettings()
    sha = hashlib.sha256(b"one picture").hexdigest()
    with committed(app) as s:
        assert observe_upload(s, Caller(1, 1, "192.0.2.1"), sha, None, settings=settings, at=T0) is None
        assert observe_upload(s, Caller(1, 1, "192.0.2.1"), sha, None, settings=settings, at=T0) is None
        assert observe_upload(s, Caller(2, 2, "192.0.2.2"), sha, None, settings=settings, at=T0) is None
        flag = observe_upload(s, Caller(3, 3, "192.0.2.3"), sha, None, settings=settings, at=T0 + timedelta(minutes=59))
        assert flag is not None
        assert (
            observe_upload(s, Caller(4, 4, "192.0.2.4"), sha, None, settings=settings, at=T0 + timedelta(minutes=59))
            is None
        )
        row = s.get(AbuseMeasure, flag)
        assert (
            row is not None
            and row.kind == "coordinated"
            and row.detail["callers"] == ["account:1", "account:2", "account:3"]
        )
    assert [r.measure_id for r in log_rows(app, "flag")] == [flag]


def test_uploads_more_than_an_hour_apart_are_no_attack_and_near_copies_by_pdq_are(app: App) -> None:
    settings = AbuseSettings()
    pdq = hashlib.sha256(b"pdq").digest()
    shas = [hashlib.sha256(bytes([n])).hexdigest() for n in range(4)]
    with committed(app) as s:
        observe_upload(s, Caller(1, 1, "192.0.2.1"), shas[0], pdq, settings=settings, at=T0)
        observe_upload(
            s, Caller(2, 2, "192.0.2.2"), shas[1], _flip(pdq, 8), settings=settings, at=T0 + timedelta(minutes=30)
        )
        late = observe_upload(
            s, Caller(3, 3, "192.0.2.3"), shas[2], _flip(pdq, 3), settings=settings, at=T0 + timedelta(minutes=61)
        )
        assert late is None  # account 1's upload is out of the window (and was deleted)
        far = observe_upload(
            s, Caller(4, 4, "192.0.2.4"), shas[3], _flip(pdq, 40), settings=settings, at=T0 + timedelta(minutes=62)
        )
        assert far is None  # 40 bits from the others: another picture
        near = observe_upload(
            s, Caller(5, 5, "192.0.2.5"), shas[3], _flip(pdq, 12), settings=settings, at=T0 + timedelta(minutes=62)
        )
        assert near is not None
        assert s.scalar(text("SELECT count(*) FROM abuse_uploads")) == 4
    with pytest.raises(InvalidInput), committed(app) as s:
        observe_upload(s, Caller(1, 1, "192.0.2.1"), "not hex", None, at=T0)


def test_probing_many_distinct_keys_is_flagged_and_throttled_and_keys_are_never_stored(app: App) -> None:
    settings = AbuseSettings(enumeration_max_distinct=5, enumeration_throttle_s=600)
    prober, honest = Caller(6, 60, "192.0.2.6"), Caller(7, 70, "192.0.2.7")
    keys = [hashlib.sha256(bytes([n])).digest() for n in range(6)]
    with committed(app) as s:
        for _ in range(20):  # the same hash over and over is not enumeration
            assert observe_probe(s, honest, "hash", keys[0], settings=settings, at=T0) is None
        flags = [observe_probe(s, prober, "hash", key, settings=settings, at=T0) for key in keys]
    assert flags[:5] == [None] * 5 and flags[5] is not None
    refused = attempt(app, prober, settings, T0 + timedelta(seconds=1))
    assert isinstance(refused, RateLimited) and refused.retry_after == 599
    assert isinstance(attempt(app, honest, settings, T0), Admission)
    assert isinstance(attempt(app, prober, settings, T0 + timedelta(seconds=601)), Admission)
    assert attempt(app, prober, settings, T0 + timedelta(seconds=601)).trust == pytest.approx(80.0, abs=1)
    with app.store.transaction() as s:
        macs = list(s.scalars(select(AbuseProbe.mac)))
        dump = json.dumps([r.detail for r in s.scalars(select(AbuseLogEntry))])
    assert len(macs) == 6 * 2 + 2 and all(len(m) == 32 for m in macs)  # per account and per IP
    stored = b"".join(macs)
    assert not any(key in stored or hashlib.sha256(key).digest() in stored for key in keys)
    assert not any(key.hex() in dump for key in keys)


def test_an_enumeration_flag_lifted_ends_the_throttle(app: App) -> None:
    settings = AbuseSettings(enumeration_max_distinct=2)
    prober = Caller(None, None, "192.0.2.8")
    with committed(app) as s:
        flags = [observe_probe(s, prober, "face", bytes([n]) * 512, settings=settings, at=T0) for n in range(3)]
    assert isinstance(attempt(app, prober, settings, T0), RateLimited)
    assert flags[:2] == [None, None] and flags[2] is not None
    with committed(app) as s:
        operators.lift(s, flags[2], actor="cli", at=T0)
    assert isinstance(attempt(app, prober, settings, T0), Admission)


def test_a_batch_of_probes_counts_each_distinct_key_once(app: App) -> None:
    settings = AbuseSettings(enumeration_max_distinct=5)
    caller = Caller(8, 80, "192.0.2.10")
    keys = [bytes([n]) * 32 for n in range(5)]
    with committed(app) as s:
        assert observe_probes(s, caller, "hash", [*keys, *keys], settings=settings, at=T0) is None
        assert observe_probes(s, caller, "hash", keys[:2], settings=settings, at=T0) is None
        assert observe_probes(s, caller, "face", keys[:1], settings=settings, at=T0) is not None  # another kind
    assert isinstance(attempt(app, caller, settings, T0), RateLimited)
    vetted = AbuseSettings(enumeration_max_distinct=5, enumeration_exempt_accounts=[9])
    with committed(app) as s:
        many = [bytes([n]) * 32 for n in range(50)]
        assert observe_probes(s, Caller(9, 90, "192.0.2.11"), "hash", many, settings=vetted, at=T0) is None


def test_the_abuse_log_is_append_only(app: App) -> None:
    with committed(app) as s:
        rejected(s, Caller(1, 1, "192.0.2.1"), "invalid_image", at=T0)
    for sql in ("UPDATE abuse_log SET reason = 'nothing'", "DELETE FROM abuse_log", "TRUNCATE abuse_log"):
        with pytest.raises(DBAPIError, match="append-only"), app.store.transaction() as s:
            s.execute(text(sql))
    with app.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(AbuseLogEntry)) == 1


def test_disabled_controls_admit_everything(app: App) -> None:
    settings = AbuseSettings(enabled=False, token_burst=1.0, ip_burst=1.0)
    assert all(isinstance(attempt(app, Caller(1, 1, "192.0.2.1"), settings, T0), Admission) for _ in range(5))


def test_the_cli_blocks_bans_lists_and_lifts(
    app: App, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from likeness.cli.main import app as cli
    from likeness.settings import get_settings

    target = account(app, "target")
    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(cli, ["abuse", "block", "203.0.113.0/24", "--for", "2h"]).exit_code == 0
        assert runner.invoke(cli, ["abuse", "ban", str(target), "--shadow"]).exit_code == 0
        assert runner.invoke(cli, ["abuse", "ban", "999999"]).exit_code == 2
        assert runner.invoke(cli, ["abuse", "block", "nowhere"]).exit_code == 2
        assert runner.invoke(cli, ["abuse", "block", "192.0.2.1", "--for", "soon"]).exit_code == 2
        listed = json.loads(runner.invoke(cli, ["abuse", "list", "--json"]).output)
        assert [(m["kind"], m["target"]) for m in listed] == [
            ("shadow_ban", f"account:{target}"),
            ("block", "203.0.113.0/24"),
        ]
        assert listed[1]["expires_at"] is not None and listed[1]["actor"] == "cli"
        only = json.loads(runner.invoke(cli, ["abuse", "list", "--kind", "block", "--json"]).output)
        assert [m["kind"] for m in only] == ["block"]
        assert runner.invoke(cli, ["abuse", "list", "--kind", "nonsense"]).exit_code == 2
        assert runner.invoke(cli, ["abuse", "lift", str(listed[1]["id"])]).exit_code == 0
        assert runner.invoke(cli, ["abuse", "lift", str(listed[1]["id"])]).exit_code == 1  # already lifted
        assert runner.invoke(cli, ["abuse", "lift", "424242"]).exit_code == 2
        remaining = json.loads(runner.invoke(cli, ["abuse", "list", "--json"]).output)
        assert [m["kind"] for m in remaining] == ["shadow_ban"]
        every = json.loads(runner.invoke(cli, ["abuse", "list", "--all", "--json"]).output)
        assert len(every) == 2 and not every[1]["active"] and every[1]["lifted_by"] == "cli"
        table = runner.invoke(cli, ["abuse", "list"])
        assert table.exit_code == 0 and "shadow_ban" in table.output
        logged = json.loads(runner.invoke(cli, ["abuse", "log", "--json"]).output)
        with committed(app) as s:
            shadow_hold(s, Caller(target, None, "192.0.2.12"), "hashes", {"count": 3})
        held = json.loads(runner.invoke(cli, ["abuse", "held", "--json"]).output)
        assert [(h["what"], h["account_id"], h["detail"]) for h in held] == [("hashes", target, {"count": 3})]
        assert "hashes" in runner.invoke(cli, ["abuse", "held"]).output
        assert [(r["decision"], r["actor"]) for r in logged] == [
            ("lift", "cli"),
            ("shadow_ban", "cli"),
            ("block", "cli"),
        ]
    finally:
        get_settings.cache_clear()
