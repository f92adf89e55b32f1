"""Cases, for the shells: NCII case reports (open, check with number and PIN, withdraw)."""

from __future__ import annotations

import contextlib

from likeness.cases import ncii
from likeness.cases.ncii import CaseDetails, CaseStatus, NewCase
from likeness.errors import NotFound
from likeness.services import hashes
from likeness.services.app import App
from likeness.store import keys

__all__ = ["CaseDetails", "CaseStatus", "NewCase", "report", "status", "withdraw"]


def report(
    app: App,
    *,
    kind: str,
    description: str,
    contact: dict[str, str] | None = None,
    urls: list[str] | None = None,
    platforms: list[str] | None = None,
    hash_ids: list[int] | None = None,
    submission: str | None = None,
    actor: str,
) -> NewCase:
    """A victim's report: its number and PIN, to be shown to them once (the PIN is kept only as a hash)."""
    with app.store.transaction() as session:
        return ncii.create_case(session, kind=kind, description=description, contact=contact or {},
                                urls=urls or [], platforms=platforms or [], hash_ids=hash_ids or [],
                                submission=submission, actor=actor)  # fmt: skip


def status(app: App, number: str, pin: str) -> CaseStatus:
    """The case's status, for whoever holds its number and PIN."""
    with app.store.transaction() as session:  # commits a wrong PIN's count before refusing
        case = ncii.authenticate(session, number, pin)
        found = ncii.status_of(case) if case is not None else None
    if found is None:
        raise ncii.refused()
    return found


def withdraw(app: App, number: str, pin: str, *, actor: str) -> CaseStatus:
    """Withdraw the case and the protected hashes it names: its sealed details are emptied, then its key is
    shredded, so nothing personal stays readable anywhere. Withdrawing a withdrawn case changes nothing."""
    with app.store.transaction() as session:
        case = ncii.authenticate(session, number, pin)
        linked = ncii.linked_hashes(session, case) if case is not None else []
        if case is not None:
            ncii.withdraw(session, case, actor=actor)
    if case is None:
        raise ncii.refused()
    if linked:
        with contextlib.suppress(NotFound):  # withdrawn already, by an operator
            hashes.withdraw(app, actor=actor, hash_ids=linked)
    with app.store.transaction() as session:
        keys.erase_withdrawn_cases(session)
    return status(app, number, pin)


def details(app: App, number: str) -> CaseDetails:
    """The case for an operator, its sealed details opened while it is open."""
    with app.store.transaction() as session:
        return ncii.details(session, number)
