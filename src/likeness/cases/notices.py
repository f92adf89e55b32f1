"""Takedown notices: drafted from a match, sent by a person, owed removal by a deadline, re-checked until gone.

A notice is drafted from what the store knows of a match (every place its media was seen, the media's SHA-256 and
PDQ, when it was found) into the template of its kind: a DMCA 17 U.S.C. 512(c)(3) notice, a GDPR Art. 17
erasure request, a TAKE IT DOWN Act removal request, or the text for a crawled platform's own report form
(docs/platform_reports.md says where each takes reports). Sending stays a person's act (``mark_sent``): the
deadline runs from then, as each law counts it (``deadline``). ``check`` reads the location again through the
caller's ``read`` (the services pass the fetch layer, SSRF guard and politeness included) and marks the notice
removed on 404/410 or when another picture is served there, or still_up once the deadline has passed with the same
picture up: those are the escalation list.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import select
from sqlalchemy.orm import Session

from likeness.analyze.hashing import pdq, sha256
from likeness.cases import review
from likeness.cases.review import MatchRecord
from likeness.errors import FetchError, InvalidInput, MediaError, NotFound
from likeness.media import decode
from likeness.registry.hashes import submission_key
from likeness.registry.subjects import subject_key
from likeness.settings import Settings
from likeness.store import audit
from likeness.store.crypto import Box, DataKey
from likeness.store.models import Match, Media, TakedownNotice

Reader = Callable[[str], bytes]

LAWS = ("dmca", "gdpr", "takedown-act")
PLATFORMS = ("civitai", "reddit", "deviantart")
KINDS = LAWS + PLATFORMS
STATUSES = ("drafted", "sent", "removed", "still_up")
OPEN = ("sent", "still_up")  # what ``check`` re-reads: sent and not yet seen gone
# Art. 17(1) GDPR: the grounds on which erasure is owed, by their letter.
GDPR_GROUNDS = {
    "a": "the personal data are no longer necessary in relation to the purposes for which they were collected or "
    "otherwise processed (Art. 17(1)(a))",
    "b": "the data subject withdraws the consent on which the processing is based and there is no other legal "
    "ground for the processing (Art. 17(1)(b))",
    "c": "the data subject objects to the processing pursuant to Art. 21(1) and there are no overriding legitimate "
    "grounds for the processing (Art. 17(1)(c))",
    "d": "the personal data have been unlawfully processed (Art. 17(1)(d)): the data subject never consented to "
    "their likeness being published, and no other lawful basis under Art. 6(1) (nor, for biometric data, an "
    "exception under Art. 9(2)) applies",
    "e": "the personal data have to be erased for compliance with a legal obligation (Art. 17(1)(e))",
    "f": "the personal data have been collected in relation to the offer of information society services to a "
    "child (Art. 17(1)(f))",
}
_TAKE_IT_DOWN_HOURS = 48  # TAKE IT DOWN Act, sec. 3(a)(3): removal "as soon as possible, but not later than 48 hours"
_env = Environment(
    loader=PackageLoader("likeness.cases", "templates/notices"),
    autoescape=False,  # plain text, pasted into forms and mail: nothing here is HTML
    undefined=StrictUndefined,  # a field missing from the context fails the draft instead of leaving a gap
)


@dataclass(frozen=True)
class Sender:
    """Who signs: the person or agent authorised to act for the one the match concerns."""

    name: str
    email: str
    address: str
    phone: str = ""


@dataclass(frozen=True)
class NoticeRecord:
    id: int
    kind: str
    match_id: int
    location: str
    sha256: str
    status: str
    channel: str | None
    drafted_at: datetime
    sent_at: datetime | None
    deadline_at: datetime | None
    checked_at: datetime | None
    finding: str | None
    response: str | None = None  # decrypted; None also once its owner withdrew


@dataclass(frozen=True)
class Draft:
    notice: NoticeRecord
    text: str


@dataclass(frozen=True)
class CheckResult:
    notice: NoticeRecord
    changed: bool  # the status moved on this check

    @property
    def escalate(self) -> bool:
        return self.notice.status == "still_up"


def sender(settings: Settings) -> Sender:
    n = settings.notices
    return Sender(n.sender_name, n.sender_email, n.sender_address, n.sender_phone)


def deadline(kind: str, sent_at: datetime, settings: Settings) -> datetime:
    """When removal (or, for GDPR, the controller's answer) is owed, counted from when the notice was sent."""
    _check_kind(kind)
    if kind == "takedown-act":
        return sent_at + timedelta(hours=_TAKE_IT_DOWN_HOURS)
    if kind == "gdpr":
        return add_month(sent_at)  # Art. 12(3): "within one month of receipt of the request"
    hours = settings.notices.dmca_hours if kind == "dmca" else settings.notices.platform_hours
    return sent_at + timedelta(hours=hours)


def add_month(when: datetime) -> datetime:
    """One calendar month later, as Regulation 1182/71 counts a period in months for EU law: the same day of the
    next month, or that month's last day when it has no such day (31 January -> 28 or 29 February)."""
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def draft(
    session: Session,
    box: Box,
    settings: Settings,
    match_id: int,
    kind: str,
    *,
    actor: str,
    ground: str = "d",
    work: str | None = None,
    evidence: list[str] | None = None,
) -> Draft:
    """A notice of ``kind`` about a match, recorded as drafted, and its text. ``ground``: the Art. 17(1) letter
    (GDPR); ``work``: the copyrighted work (DMCA; by default the original photographs of the person or the
    registered image); ``evidence``: ids of frozen evidence to cite."""
    _check_kind(kind)
    if kind == "gdpr" and ground not in GDPR_GROUNDS:
        raise InvalidInput(f"unknown Art. 17(1) ground {ground!r}; one of {', '.join(GDPR_GROUNDS)}")
    match = review.get_match(session, box, match_id)
    media = session.get(Media, match.media_id)
    assert media is not None  # a match's media is kept as long as the match (ON DELETE CASCADE)
    location = _location(match)
    notice = TakedownNotice(kind=kind, match_id=match_id, location=location, sha256=match.sha256, pdq=media.pdq)
    session.add(notice)
    session.flush()
    audit.record(session, "notice.drafted", "notice", notice.id, {"kind": kind, "match": match_id}, actor=actor)
    context = _context(notice, match, media, settings, ground=ground, work=work, evidence=evidence or [])
    text = _env.get_template(f"{kind}.txt").render(**context) + "\n"
    session.refresh(notice)
    return Draft(_record(notice, box), text)


def mark_sent(
    session: Session, box: Box, settings: Settings, notice_id: int, channel: str, *, actor: str
) -> NoticeRecord:
    """The notice went out through ``channel`` (an address, a form's URL): its deadline starts now."""
    if not channel.strip():
        raise InvalidInput("say which channel the notice was sent through (an email address, a form's URL)")
    notice = _get(session, notice_id)
    if notice.status != "drafted":
        raise InvalidInput(f"notice {notice_id} is {notice.status}, not drafted: it was sent already")
    now = datetime.now(UTC)
    notice.status, notice.channel, notice.sent_at = "sent", channel, now
    notice.deadline_at = deadline(notice.kind, now, settings)
    details = {"channel": channel, "deadline": notice.deadline_at.isoformat()}
    audit.record(session, "notice.sent", "notice", notice_id, details, actor=actor)
    advance_match(session, box, notice.match_id, "actioned", actor=actor)
    return _record(notice, box)


def record_response(session: Session, box: Box, notice_id: int, response: str, *, actor: str) -> NoticeRecord:
    """What the platform or controller answered, sealed with the key of whom the match concerns."""
    notice = _get(session, notice_id)
    key = _owner_key(session, box, notice.match_id)
    notice.response_enc, notice.response_key_id = key.seal_text(response), key.id
    audit.record(
        session, "notice.response", "notice", notice_id, {"response": True}, actor=actor,
        personal={"response": response}, owner=key,
    )  # fmt: skip
    return _record(notice, box)


def list_notices(session: Session, box: Box, status: str | None = None) -> list[NoticeRecord]:
    query = select(TakedownNotice).order_by(TakedownNotice.id)
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput(f"unknown notice status {status!r}; one of {', '.join(STATUSES)}")
        query = query.where(TakedownNotice.status == status)
    return [_record(n, box) for n in session.scalars(query)]


def get_notice(session: Session, box: Box, notice_id: int) -> NoticeRecord:
    return _record(_get(session, notice_id), box)


def open_ids(session: Session) -> list[int]:
    """The notices ``check`` re-reads."""
    query = select(TakedownNotice.id).where(TakedownNotice.status.in_(OPEN)).order_by(TakedownNotice.id)
    return list(session.scalars(query))


def check(
    session: Session, box: Box, settings: Settings, notice_id: int, read: Reader, *, actor: str, now: datetime | None
) -> CheckResult:
    """Read the location again and say what is there: removed (404/410, or another picture), still_up (the same
    picture, past the deadline), or sent unchanged (the same picture within the deadline, or unreachable)."""
    notice = _get(session, notice_id, lock=True)
    if notice.status not in OPEN:
        raise InvalidInput(f"notice {notice_id} is {notice.status}: only sent notices are checked")
    now = now or datetime.now(UTC)
    gone, finding = _look(notice, settings, read)
    status = "removed" if gone else notice.status
    if gone is False and notice.deadline_at is not None and now > notice.deadline_at:
        status = "still_up"
    changed = status != notice.status
    notice.status, notice.checked_at, notice.finding = status, now, finding
    audit.record(session, "notice.checked", "notice", notice_id, {"status": status, "finding": finding}, actor=actor)
    if changed:
        advance_match(session, box, notice.match_id, status, actor=actor)
    return CheckResult(_record(notice, box), changed)


def advance_match(session: Session, box: Box, match_id: int, status: str, *, actor: str) -> None:
    """Move the match along review's states (confirmed -> actioned -> removed | still_up) when review allows that
    move from where the match is; otherwise (a match never confirmed, or one already moved on) it stays as it is,
    and the notice's own status says what happened to the material."""
    nexts = getattr(review, "allowed", None)  # review's state machine: the moves from a state
    match = session.get(Match, match_id)
    if match is None or status not in review.STATUSES or nexts is None or status not in nexts(match.status):
        return
    review.set_status(session, box, match_id, status, actor=actor, note=None)


def _look(notice: TakedownNotice, settings: Settings, read: Reader) -> tuple[bool | None, str]:
    """(gone, what was seen): gone True, False (the same picture is served), or None (could not tell)."""
    try:
        data = read(notice.location)
    except FetchError as exc:
        code = _http_status(exc)
        if code in (404, 410):
            return True, f"HTTP {code}"
        if "not a picture or video" in str(exc):  # the fetch layer's refusal of a page served instead
            return True, "no picture served there any more (a page instead)"
        return None, f"could not tell: {exc}"
    if sha256(data) == notice.sha256:
        return False, "the same bytes are still served"
    return _compare_pixels(notice, settings, data)


def _compare_pixels(notice: TakedownNotice, settings: Settings, data: bytes) -> tuple[bool | None, str]:
    """Other bytes: the same picture re-encoded (PDQ within the match distance) is still up; another is not."""
    try:
        found, _quality = pdq(decode(data, settings.media).pixels)
    except MediaError as exc:
        return True, f"another file is served, not a readable picture ({exc.kind})"
    if notice.pdq is None:
        return True, "another file is served (no PDQ of the matched picture to compare)"
    distance = sum(bin(a ^ b).count("1") for a, b in zip(found, notice.pdq, strict=True))
    if distance <= settings.hashes.pdq_max_distance:
        return False, f"the same picture is still served, re-encoded (PDQ distance {distance})"
    return True, f"another picture is served (PDQ distance {distance})"


def _http_status(exc: FetchError) -> int | None:
    """The status of a refused answer: the fetch layer says it as "<url>: HTTP <code>"."""
    found = re.search(r": HTTP (\d{3})$", str(exc))
    return int(found.group(1)) if found else None


def _location(match: MatchRecord) -> str:
    """Where the material is: the first place seen on the web (a local path is no place to send a notice)."""
    for s in match.sightings:
        if s.url.startswith(("http://", "https://")):
            return s.url
    if match.location.startswith(("http://", "https://")):
        return match.location
    raise InvalidInput(f"match {match.id} was seen at no web address: there is no one to send a notice to")


def _context(
    notice: TakedownNotice, match: MatchRecord, media: Media, settings: Settings, **extra: Any
) -> dict[str, Any]:
    web = [s for s in match.sightings if s.url.startswith(("http://", "https://"))]
    person = match.target if match.kind == "face" else None
    return {
        "notice_id": notice.id,
        "kind": notice.kind,
        "date": datetime.now(UTC).date().isoformat(),
        "sender": sender(settings),
        "match": match,
        "person": person or "(the person depicted)",
        "sightings": web,
        "found_at": match.created_at.isoformat(timespec="seconds"),
        "sha256": match.sha256,
        "pdq": media.pdq.hex() if media.pdq is not None else None,
        "ground_text": GDPR_GROUNDS.get(extra["ground"], ""),
        "work": extra["work"] or _work(match),
        "dmca_hours": settings.notices.dmca_hours,
        **extra,
    }


def _work(match: MatchRecord) -> str:
    if match.kind == "face":
        return f"original photographs of {match.target}, whose copyright {match.target} holds"
    return f"the original image registered as protected (bank {match.bank}, submission {match.submission or '-'})"


def _owner_key(session: Session, box: Box, match_id: int) -> DataKey:
    """The key of whom the match concerns (its subject, or its hash's submission); a key of its own otherwise."""
    match = session.get(Match, match_id)
    key = None
    if match is not None and match.subject_id is not None:
        key = subject_key(session, box, match.subject_id)
    elif match is not None and match.hash_id is not None:
        key = submission_key(session, box, match.hash_id)
    return key or box.new_key(session)


def _get(session: Session, notice_id: int, lock: bool = False) -> TakedownNotice:
    notice = session.get(TakedownNotice, notice_id, with_for_update=lock)
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    return notice


def _record(n: TakedownNotice, box: Box) -> NoticeRecord:
    response = None
    if n.response_enc is not None:
        key = box.key(n.response_key_id)
        response = key.open_text(n.response_enc) if key is not None else None
    return NoticeRecord(
        n.id, n.kind, n.match_id, n.location, n.sha256, n.status, n.channel, n.drafted_at, n.sent_at,
        n.deadline_at, n.checked_at, n.finding, response,
    )  # fmt: skip


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"unknown notice kind {kind!r}; one of {', '.join(KINDS)}")
