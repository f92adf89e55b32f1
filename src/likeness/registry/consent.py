"""The consent text a person agrees to when enrolling themselves, kept exactly as shown.

Why by SHA-256: the subject's record names the text's digest (``subjects.consent_sha256``) and the text is stored
once under it (``consent_texts``), so rewording the text later makes a new version without touching what anyone
agreed to before; a form carries the digest of the text it showed, so a text changed meanwhile is not agreed to
unseen. The texts ship with the package (registry/consent/<version>.txt)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from likeness.errors import ConfigurationError, InvalidInput
from likeness.store import audit
from likeness.store.models import ConsentText, Subject


@dataclass(frozen=True)
class Consent:
    version: str
    text: str
    sha256: str


@cache
def consent(version: str) -> Consent:
    source = resources.files("likeness.registry") / "consent" / f"{version}.txt"
    if not version.isalnum() or not source.is_file():
        raise ConfigurationError(f"no consent text {version!r} (likeness/registry/consent/{version}.txt)")
    text = source.read_text(encoding="utf-8")
    return Consent(version, text, hashlib.sha256(text.encode()).hexdigest())


def record(session: Session, subject_id: int, shown: Consent, agreed_sha256: str, *, actor: str) -> None:
    """The subject agreed to ``shown``: refused unless the form's digest is that text's (it changed meanwhile)."""
    if agreed_sha256 != shown.sha256:
        raise InvalidInput("the consent text changed since the page was loaded: read it again and agree to it")
    session.execute(
        insert(ConsentText).values(sha256=shown.sha256, version=shown.version, text=shown.text).on_conflict_do_nothing()
    )
    subject = session.get(Subject, subject_id, with_for_update=True)
    assert subject is not None  # just created in this transaction
    subject.consent_sha256, subject.consented_at, subject.enrolled_by = shown.sha256, func.now(), "self"
    audit.record(session, "subject.consented", "subject", subject_id, {"version": shown.version,
                 "sha256": shown.sha256}, actor=actor)  # fmt: skip


def agreed(session: Session, subject_id: int) -> ConsentText | None:
    """The text the subject agreed to, as it was shown; None when enrolled by an operator."""
    return session.scalar(
        select(ConsentText).join(Subject, Subject.consent_sha256 == ConsentText.sha256).where(Subject.id == subject_id)
    )
