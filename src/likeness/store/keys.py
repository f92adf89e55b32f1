"""Owners' keys over their lifetime: wiring a store to its keyring, finishing withdrawals, sweeping orphans, and
re-sealing what was stored before migration 0008, once.

Withdrawal runs in this order, so that a crash at any point never leaves a withdrawn person's key behind:
1. one transaction marks the owner withdrawn (``withdrawn_at``) and audits it; from then on the owner reads as
   gone (lists, matching and reports skip them);
2. the key is shredded;
3. one transaction deletes the owner's rows (``erase_withdrawn``).
A crash after 1 or 2 is finished by the next start (``start``). A key that is missing without a mark is never
taken as a withdrawal (a wrong LIKENESS_KEYRING must not delete anyone): such an owner only reads as unavailable.

Orphans: a key created by a transaction that died with its process stays *pending*. At start, a pending key that
a row refers to is committed (the process died between commit and its hook); one that no row refers to and that is
older than ``ORPHAN_AGE_S`` (no live transaction holds a key that long) is shredded.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from likeness.errors import ConfigurationError
from likeness.store import audit
from likeness.store.crypto import Box, DataKey, bind, box_of
from likeness.store.models import (
    AuditEvent,
    Match,
    NciiCase,
    ProtectedHash,
    Subject,
    SubjectReference,
    Submission,
)

if TYPE_CHECKING:
    from likeness.store.db import Store

ORPHAN_AGE_S = 3600.0
_START_LOCK = 7_243_021
log = logging.getLogger(__name__)


def attach(store: Store, migrate: bool = True) -> Store:
    """Wire the store's sessions to its keys and audit checkpoint; with ``migrate``, do the start-up work."""
    bind(store.sessions, store.box)
    audit.install(store.sessions)
    if migrate:
        start(store)
    return store


def start(store: Store) -> None:
    try:
        with store.transaction() as session:
            if _has_legacy(session):
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _START_LOCK})
                convert_legacy(session)
    except DBAPIError as exc:  # most likely: not the owner of audit_log, whose trigger adoption lifts once
        first = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        raise ConfigurationError(f"re-sealing data from before migration 0008 failed: {first}") from exc
    with store.transaction() as session:
        sweep_orphans(session, ORPHAN_AGE_S)
        erase_withdrawn(session)


def erase_withdrawn(session: Session) -> int:
    """Steps 2 and 3 of every withdrawal marked and not finished: shred the key, then delete the rows."""
    box = box_of(session)
    cases = erase_withdrawn_cases(session)
    subjects = session.scalars(
        select(Subject).where(Subject.withdrawn_at.is_not(None)).with_for_update(skip_locked=True)
    ).all()
    submissions = session.scalars(
        select(Submission).where(Submission.withdrawn_at.is_not(None)).with_for_update(skip_locked=True)
    ).all()
    if not subjects and not submissions:
        return cases
    for key_id in [s.key_id for s in subjects] + [s.key_id for s in submissions]:
        box.shred(key_id)
    subject_ids, submission_ids = [s.id for s in subjects], [s.id for s in submissions]
    session.execute(delete(Match).where(Match.subject_id.in_(subject_ids)))
    session.execute(delete(SubjectReference).where(SubjectReference.subject_id.in_(subject_ids)))
    session.execute(delete(Subject).where(Subject.id.in_(subject_ids)))
    session.execute(delete(ProtectedHash).where(ProtectedHash.submission.in_(submission_ids)))
    session.execute(delete(Submission).where(Submission.id.in_(submission_ids)))
    return len(subject_ids) + len(submission_ids) + cases


def erase_withdrawn_cases(session: Session) -> int:
    """NCII cases marked withdrawn whose key is still there: shred it. The row stays (its number answers
    "withdrawn"), emptied of everything personal when it was marked (cases/ncii.py)."""
    box = box_of(session)
    cases = session.scalars(
        select(NciiCase)
        .where(NciiCase.withdrawn_at.is_not(None), NciiCase.key_id.is_not(None))
        .with_for_update(skip_locked=True)
    ).all()
    for case in cases:
        box.shred(case.key_id)
        case.key_id, case.details_enc = None, None
    return len(cases)


def sweep_orphans(session: Session, older_than_s: float) -> int:
    """Resolve pending keys left by dead processes: commit those rows refer to, shred the others."""
    box = box_of(session)
    shredded = 0
    for key_id in box.keys.pending(older_than_s):
        if _referenced(session, key_id):
            box.keys.commit(key_id)
        else:
            box.keys.shred(key_id)
            shredded += 1
    if shredded:
        log.info("shredded %d orphan key(s)", shredded)
    return shredded


def _referenced(session: Session, key_id: str) -> bool:
    return any(
        session.scalar(select(column).where(column == key_id).limit(1)) is not None
        for column in (Subject.key_id, Submission.key_id, AuditEvent.key_id, NciiCase.key_id)
    )


# -- before 0008 -------------------------------------------------------------------------------------------------


def _has_legacy(session: Session) -> bool:
    checks = (
        select(Subject.id).where(Subject.key_id.is_(None)),
        select(Submission.id).where(Submission.key_id.is_(None)),
        select(AuditEvent.id).where(AuditEvent.chain_version != audit.CHAIN_VERSION),
    )
    return any(session.scalar(check.limit(1)) is not None for check in checks)


def convert_legacy(session: Session) -> None:
    """Re-seal subjects and submissions under keys of their own, then key the audit chain (moving the personal
    details of its old rows under the same keys). One transaction: all of it, or nothing."""
    box = box_of(session)
    subjects = {s.id: _reseal_subject(session, box, s) for s in _legacy(session, Subject)}
    submissions = {s.legacy_label: (s.id, _reseal_submission(session, box, s)) for s in _legacy(session, Submission)}
    adopted = audit.adopt_legacy(session, lambda row: _scrub(row, subjects, submissions))
    log.warning(
        "re-sealed %d subject(s) and %d submission(s) under their own keys and keyed %d audit row(s); older copies "
        "stay in this database's WAL and dead rows until VACUUM FULL and a checkpoint, and in earlier backups",
        len(subjects),
        len(submissions),
        adopted,
    )


def _legacy(session: Session, model: type[Subject] | type[Submission]) -> list[Any]:
    return list(session.scalars(select(model).where(model.key_id.is_(None)).with_for_update()))


def _reseal_subject(session: Session, box: Box, subject: Subject) -> DataKey:
    key = box.new_key(session)
    subject.key_id = key.id
    subject.name_enc = key.seal(box.legacy_open(subject.name_enc))
    subject.domains_enc = key.seal_json(sorted(subject.allowed_domains or []))
    if subject.centroid is not None:
        subject.centroid_enc = key.seal_vector(subject.centroid)
    subject.allowed_domains, subject.centroid = [], None
    for ref in session.scalars(select(SubjectReference).where(SubjectReference.subject_id == subject.id)):
        if ref.embedding is not None:
            ref.embedding_enc = key.seal_vector(ref.embedding)
        if ref.crop_enc is not None:
            ref.crop_enc = key.seal(box.legacy_open(ref.crop_enc))
        ref.embedding = None
    session.flush()
    return key


def _reseal_submission(session: Session, box: Box, submission: Submission) -> DataKey:
    key = box.new_key(session)
    label = submission.legacy_label or ""
    submission.key_id, submission.label_enc = key.id, key.seal_text(label)
    submission.label_index, submission.legacy_label = box.label_index(label), None
    session.flush()
    return key


def _scrub(
    row: AuditEvent, subjects: dict[int, DataKey], submissions: dict[str | None, tuple[str, DataKey]]
) -> tuple[dict[str, Any], dict[str, Any] | None, DataKey | None]:
    """An old row's details without what is personal: that goes sealed under its owner's key, or is dropped (and
    said so in ``redacted``) when the owner was withdrawn before 0008."""
    details, personal, owner, redacted = dict(row.details), {}, None, []
    if row.action == "subject.enrolled" and "allowed_domains" in details:
        owner = subjects.get(row.entity_id or 0)
        domains = details.pop("allowed_domains")
        if owner is not None:
            personal["allowed_domains"] = domains
        else:
            redacted.append("allowed_domains")
    label = details.get("submission")
    if isinstance(label, str):
        found = submissions.get(label)
        details["submission"] = found[0] if found else None
        if found:
            personal["submission_label"], owner = label, found[1]
        else:
            redacted.append("submission")
    if redacted:
        details["redacted"] = redacted
    return details, personal or None, owner
