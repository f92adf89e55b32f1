"""The append-only audit log, chained by a keyed MAC and checkpointed outside the database.

Call ``record`` inside the transaction that makes the change. Each row's MAC (HMAC-SHA256, ``hash``) covers every
field of the row (sequence number, id, timestamp, actor, action, entity, entity id, details, owner key id, the
sealed personal part) and the previous row's MAC (``prev_hash``). The MAC key is derived from the master key and
never stored in the database, so a superuser who disables the append-only trigger and rewrites rows cannot
re-chain them: recomputing plain hashes, as they could with the SHA-256 chain before 0008, no longer fits.

Rows are numbered 1, 2, 3... without gaps under the chain's advisory lock, so a deleted row shows as a gap. A
deleted tail, or a truncated table, leaves no gap: after each commit that wrote audit rows, the chain's head
(sequence number, MAC, and the MAC of row 1, which names the chain) is written to a checkpoint file outside the
database (LIKENESS_HOME/audit-head.json), only ever forward and under a file lock, so several processes may share
it. ``verify`` walks the chain and checks it reaches the checkpoint. A crash between a commit and its checkpoint
leaves the checkpoint one commit behind: a tail deleted within that moment is the one thing it cannot see.

Personal details (a name, allowed domains, a submission label) go in ``personal=``, sealed with the owner's key:
destroying the key at withdrawal leaves the record, its MAC and the chain intact and the details unreadable.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Text, bindparam, cast, event, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, sessionmaker

from likeness.store.crypto import Box, DataKey, box_of
from likeness.store.models import AuditEvent

GENESIS = "0" * 64
CHAIN_VERSION = 1
_CHAIN_LOCK = 7_243_020
_HEAD = "likeness.audit_head"
log = logging.getLogger(__name__)

# The transaction's timestamp, the next id, the canonical text of the details (PostgreSQL's own rendering of the
# JSONB value: what ``verify`` reads back), the head, row 1's MAC and the MAC at the checkpoint, in one round trip.
_PREPARE = text(
    """
    SELECT now(), nextval(pg_get_serial_sequence('audit_log', 'id')), CAST(:details AS jsonb)::text,
           head.seq, head.hash, (SELECT hash FROM audit_log WHERE seq = 1),
           (SELECT hash FROM audit_log WHERE seq = :checkpoint)
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS head ON true
    """
)


@dataclass(frozen=True)
class Head:
    """A point of the chain: row ``seq`` has MAC ``mac``; ``genesis`` is row 1's MAC, naming the chain."""

    seq: int
    mac: str
    genesis: str


@dataclass(frozen=True)
class Link:
    """What the MAC of a row covers, besides the previous row's MAC."""

    seq: int
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: int | None
    details: str  # canonical JSON text
    key_id: str | None
    personal: bytes | None


@dataclass(frozen=True)
class Verdict:
    intact: bool
    rows: int  # rows found intact (from row 1 on)
    checkpoint: int | None  # the checkpointed sequence number, None when there is no checkpoint
    first_bad: int | None = None  # the first sequence number missing or wrong
    reason: str | None = None


def record(
    session: Session,
    action: str,
    entity: str,
    entity_id: int | None,
    details: dict[str, Any] | None = None,
    *,
    actor: str,  # who: "cli", "user:<id>", "token:<id>", "scanner", "system"; no default, so none is made up
    personal: dict[str, Any] | None = None,
    owner: DataKey | None = None,
) -> int:
    """Append one row; returns its sequence number. ``personal`` is sealed with ``owner``'s key."""
    if personal and owner is None:
        raise ValueError("personal audit details need the owner's key")
    box = box_of(session)
    sealed = owner.seal_json(personal) if personal and owner else None
    key_id = owner.id if sealed is not None and owner else None
    # Serialise writers so the chain stays linear and gapless; the lock is released at commit or rollback.
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    checkpoint = _checkpoint_or_none(box.checkpoint)
    at, row_id, canonical, head_seq, head_mac, genesis, at_checkpoint = session.execute(
        _PREPARE, {"details": json.dumps(details or {}), "checkpoint": checkpoint.seq if checkpoint else 0}
    ).one()
    link = Link((head_seq or 0) + 1, row_id, at, actor, action, entity, entity_id, canonical, key_id, sealed)
    prev = head_mac or GENESIS
    mac = chain_mac(box.audit_key, prev, link)
    session.execute(insert(AuditEvent).values(**_columns(link), prev_hash=prev, hash=mac))
    if checkpoint is None or at_checkpoint == checkpoint.mac:
        session.info[_HEAD] = Head(link.seq, mac, genesis or mac)
    else:  # the log no longer passes through its checkpoint: keep the evidence, never move it onto this chain
        log.error("the audit log does not reach its checkpoint (row %d): run `likeness audit verify`", checkpoint.seq)
    return link.seq


def _checkpoint_or_none(path: Path) -> Head | None:
    try:
        return read_checkpoint(path)
    except ValueError:
        return None  # advance_checkpoint will not overwrite it either


def _columns(link: Link) -> dict[str, Any]:
    values = asdict(link)
    values["details"] = cast(bindparam(None, link.details, type_=Text), JSONB)
    return {**values, "chain_version": CHAIN_VERSION}


def chain_mac(key: bytes, prev: str, link: Link) -> str:
    personal = base64.b64encode(link.personal).decode() if link.personal is not None else None
    at = link.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = [CHAIN_VERSION, link.seq, link.id, at, link.actor, link.action, link.entity, link.entity_id]
    fields += [link.details, link.key_id, personal, prev]
    message = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


# -- the checkpoint --------------------------------------------------------------------------------------------


def install(sessions: sessionmaker[Session]) -> None:
    """Checkpoint the head after every commit that wrote audit rows."""
    event.listen(sessions, "after_commit", _checkpoint_committed)
    event.listen(sessions, "after_rollback", lambda session: session.info.pop(_HEAD, None))


def _checkpoint_committed(session: Session) -> None:
    head = session.info.pop(_HEAD, None)
    if head is not None:
        advance_checkpoint(box_of(session).checkpoint, head)


def advance_checkpoint(path: Path, head: Head) -> None:
    """Move the checkpoint forward to ``head``; never back, and never onto another chain."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_name(path.name + ".lock")):
        try:
            current = read_checkpoint(path)
        except ValueError:
            log.warning("audit checkpoint %s is unreadable: left as it is", path)
            return
        if current is not None and current.genesis != head.genesis:
            log.warning("audit checkpoint %s belongs to another chain: left as it is", path)
            return
        if current is not None and current.seq >= head.seq:
            return
        _replace(path, json.dumps(asdict(head)).encode())


def read_checkpoint(path: Path) -> Head | None:
    """The checkpointed head; None when there is none; ValueError when the file is not a checkpoint."""
    try:
        raw = json.loads(path.read_bytes())
        return Head(int(raw["seq"]), str(raw["mac"]), str(raw["genesis"]))
    except FileNotFoundError:
        return None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is not an audit checkpoint") from exc


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _replace(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# -- verifying and reading ------------------------------------------------------------------------------------


def verify(session: Session) -> Verdict:
    """Walk the chain from row 1, then hold its end against the checkpoint; the first fault found is reported."""
    box = box_of(session)
    try:
        checkpoint = read_checkpoint(box.checkpoint)
    except ValueError as exc:
        return Verdict(False, 0, None, 1, f"{exc}: it was damaged, so truncation cannot be ruled out")
    prev, rows = GENESIS, 0
    for link, version, row_prev, row_mac in _links(session):
        fault = _fault(box, link, version, row_prev, row_mac, prev, rows + 1)
        fault = fault or _off_checkpoint(checkpoint, link, row_mac)
        if fault is not None:
            return Verdict(False, rows, checkpoint.seq if checkpoint else None, *fault)
        prev, rows = row_mac, rows + 1
    return _against_checkpoint(checkpoint, rows)


def _fault(
    box: Box, link: Link, version: int, row_prev: str, row_mac: str, prev: str, expected: int
) -> tuple[int, str] | None:
    if link.seq != expected:
        return expected, f"row {expected} is missing (the log goes on at row {link.seq}): rows were deleted"
    if version != CHAIN_VERSION:
        return link.seq, "the row is not in the keyed chain (from before migration 0008, never adopted)"
    if row_prev != prev:
        return link.seq, "the row does not follow the row before it: the chain was cut or rows were replaced"
    if not hmac.compare_digest(row_mac, chain_mac(box.audit_key, prev, link)):
        return link.seq, "the row was altered: its MAC does not fit its fields (an edit, or a re-chain without the key)"
    return None


def _off_checkpoint(checkpoint: Head | None, link: Link, row_mac: str) -> tuple[int, str] | None:
    """A chain intact by its MACs that is not the checkpointed one: rows were deleted and the application then
    wrote new ones in their place (from row 1 on, after a truncation)."""
    if checkpoint is None:
        return None
    if link.seq == 1 and not hmac.compare_digest(row_mac, checkpoint.genesis):
        return 1, "row 1 is not the checkpoint's: the log was rewritten from the start (or this is another database)"
    if link.seq == checkpoint.seq and not hmac.compare_digest(row_mac, checkpoint.mac):
        return link.seq, f"row {link.seq} is not the row the checkpoint records: the rows from here on were replaced"
    return None


def _against_checkpoint(checkpoint: Head | None, rows: int) -> Verdict:
    """The chain is intact from row 1 to row ``rows``, through the checkpoint's row if it got there: it must reach
    the checkpoint."""
    if checkpoint is None:
        return Verdict(True, rows, None)
    if rows < checkpoint.seq:
        what = "the log is empty" if rows == 0 else f"the log ends at row {rows}"
        reason = f"{what} but the checkpoint records row {checkpoint.seq}: the log was truncated or its tail deleted"
        return Verdict(False, rows, checkpoint.seq, rows + 1, reason)
    return Verdict(True, rows, checkpoint.seq)


def _links(session: Session) -> Iterator[tuple[Link, int, str, str]]:
    a = AuditEvent
    query = select(
        a.seq, a.id, a.at, a.actor, a.action, a.entity, a.entity_id, cast(a.details, Text), a.key_id, a.personal,
        a.chain_version, a.prev_hash, a.hash,
    ).order_by(a.seq)  # fmt: skip
    for row in session.execute(query.execution_options(yield_per=1000)):
        personal = bytes(row[9]) if row[9] is not None else None
        yield Link(*row[:9], personal=personal), row[10], row[11], row[12]


def export(session: Session, decrypt: bool = False) -> Iterator[dict[str, Any]]:
    """Every row as it is stored, MACs included (a copy that can be verified with the key). The personal part
    stays sealed unless ``decrypt``; it reads ``"shredded"`` once its owner's key is gone."""
    box = box_of(session)
    keys: dict[str, DataKey | None] = {}
    for row in session.execute(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=1000)):
        event_row: AuditEvent = row[0]
        yield _exported(event_row, _open_personal(box, keys, event_row) if decrypt else None)


def _exported(row: AuditEvent, personal: Any) -> dict[str, Any]:
    sealed = base64.b64encode(bytes(row.personal)).decode() if row.personal is not None else None
    out = {
        "seq": row.seq, "id": row.id, "at": row.at.astimezone(UTC).isoformat(), "actor": row.actor,
        "action": row.action, "entity": row.entity, "entity_id": row.entity_id, "details": row.details,
        "key_id": row.key_id, "personal_sealed": sealed, "prev_mac": row.prev_hash, "mac": row.hash,
    }  # fmt: skip
    if personal is not None:
        out["personal"] = personal
    return out


def _open_personal(box: Box, keys: dict[str, DataKey | None], row: AuditEvent) -> Any:
    if row.personal is None or row.key_id is None:
        return None
    if row.key_id not in keys:
        keys[row.key_id] = box.key(row.key_id)
    key = keys[row.key_id]
    return key.open_json(row.personal) if key is not None else "shredded"


def registry_version(session: Session) -> int:
    """Changes with every subject, protected hash or bank change; in-memory indexes compare it to reload."""
    return (
        session.scalar(
            select(AuditEvent.id)
            .where(AuditEvent.entity.in_(("subject", "hash", "bank")))
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
        or 0
    )


# -- adopting rows chained before 0008 ------------------------------------------------------------------------

Scrub = Callable[[AuditEvent], tuple[dict[str, Any], dict[str, Any] | None, DataKey | None]]


def adopt_legacy(session: Session, scrub: Scrub) -> int:
    """Key the rows written before 0008 (plain SHA-256, personal details in clear), once, at start.

    The plain chain is checked first and its verdict recorded; then, from the first such row on, each row's
    personal details are moved by ``scrub`` into a part sealed with the owner's key (or dropped when the owner is
    gone) and every row gets its MAC. The rows are rewritten in place, so the append-only trigger is lifted for
    this transaction only (the table's owner may; the migration made it). Returns how many rows were adopted.
    """
    first = session.scalar(select(func.min(AuditEvent.seq)).where(AuditEvent.chain_version != CHAIN_VERSION))
    if first is None:
        return 0
    legacy_fault, legacy_head = legacy_verify(session)
    box = box_of(session)
    prev = session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == first - 1)) or GENESIS
    session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
    adopted = 0
    for row in session.scalars(select(AuditEvent).where(AuditEvent.seq >= first).order_by(AuditEvent.seq)).all():
        prev = _rechain(session, box, row, prev, scrub if row.chain_version != CHAIN_VERSION else None)
        adopted += 1
    session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
    verdict = "intact" if legacy_fault is None else f"broken at id {legacy_fault}"
    details = {"rows": adopted, "legacy_chain": verdict, "legacy_head": legacy_head}
    record(session, "audit.adopted", "audit", None, details, actor="system")
    return adopted


def _rechain(session: Session, box: Box, row: AuditEvent, prev: str, scrub: Scrub | None) -> str:
    if scrub is None:  # a keyed row after an unadopted one: same content, new link
        details, key_id, sealed = row.details, row.key_id, row.personal
    else:
        details, personal, owner = scrub(row)
        sealed = owner.seal_json(personal) if personal and owner else None
        key_id = owner.id if sealed is not None and owner else None
    canonical = str(session.scalar(select(cast(cast(bindparam(None, json.dumps(details), type_=Text), JSONB), Text))))
    link = Link(row.seq, row.id, row.at, row.actor, row.action, row.entity, row.entity_id, canonical, key_id, sealed)
    mac = chain_mac(box.audit_key, prev, link)
    values = {**_columns(link), "prev_hash": prev, "hash": mac}
    session.execute(update(AuditEvent).where(AuditEvent.id == row.id).values(**values))
    return mac


def legacy_verify(session: Session) -> tuple[int | None, str]:
    """The plain SHA-256 chain of the rows from before 0008: (id of the first bad row or None, the last hash)."""
    prev = GENESIS
    query = select(AuditEvent).where(AuditEvent.chain_version != CHAIN_VERSION).order_by(AuditEvent.id)
    for row in session.scalars(query):
        body = {k: getattr(row, k) for k in ("actor", "action", "entity", "entity_id", "details")}
        plain = hashlib.sha256((prev + json.dumps(body, sort_keys=True, default=str)).encode()).hexdigest()
        if row.prev_hash != prev or row.hash != plain:
            return row.id, row.hash
        prev = row.hash
    return None, prev
