"""Takedown notices: each template carries every element its law requires, deadlines are counted as each law
counts them, and ``check`` reads the location again through the fetch layer (a loopback server here, admitted by
``fetch.allow_private_networks``): removed on 404/410 or another picture, still_up past the deadline when the same
picture is still served."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from likeness.analyze.hashing import pdq
from likeness.cases import notices
from likeness.cli.takedown import takedown_app as cli  # mounted as `likeness cases takedown` (cli/cases.py)
from likeness.errors import InvalidInput
from likeness.services import notices as service
from likeness.services.app import App, open_app
from likeness.settings import FetchSettings, NoticeSettings, Settings
from likeness.store.models import AuditEvent, Bank, Match, Media, ProtectedHash, Sighting, Subject, TakedownNotice
from tests import images

SENDER = NoticeSettings(
    sender_name="Jo Agent",
    sender_email="jo@example.org",
    sender_address="1 Main St, Springfield",
    sender_phone="+1 555 0100",
)
PICTURE = images.encode(images.astronaut())


@dataclass
class Site:
    """A page server on loopback: each path answers (status, body) as set by the test."""

    url: str = ""
    pages: dict[str, tuple[int, bytes]] = field(default_factory=dict)


@pytest.fixture
def site() -> Iterator[Site]:
    got = Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = got.pages.get(self.path, (404, b""))
            self.send_response(status)
            picture = status == 200 and body.startswith(b"\xff\xd8")  # a JPEG; anything else is a page
            self.send_header("Content-Type", "image/jpeg" if picture else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield got
    server.shutdown()
    server.server_close()


@pytest.fixture
def notice_settings(settings: Settings) -> Settings:
    fetch = FetchSettings(allow_private_networks=True, retries=1)  # the site is on loopback
    return settings.model_copy(update={"fetch": fetch, "notices": SENDER})


@pytest.fixture
def napp(notice_settings: Settings) -> Iterator[App]:
    instance = open_app(notice_settings)
    yield instance
    instance.close()


def _match(app: App, url: str, *, face: bool = False, status: str = "confirmed") -> int:
    """A match as the scanner stores it: the media (SHA-256, PDQ), where it was seen, what it matched."""
    digest, _ = pdq(images.astronaut())
    with app.store.transaction() as s:
        media = Media(sha256=hashlib.sha256(PICTURE).hexdigest(), status="analyzed", format="jpeg", pdq=digest)
        s.add(media)
        s.flush()
        s.add(Sighting(media_id=media.id, location=url, location_hash=hashlib.sha256(url.encode()).digest()))
        if face:
            key = app.store.box.new_key(s)
            subject = Subject(key_id=key.id, name_enc=key.seal_text("Ada Lovelace"), engine="e", model="m")
            s.add(subject)
            s.flush()
            match = Match(kind="face", subject_id=subject.id, media_id=media.id, score=0.9, tier="high", status=status)
        else:
            s.add(Bank(name="ncii"))
            s.flush()
            protected = ProtectedHash(bank="ncii", algorithm="pdq/1.0", digest=digest, quality=100)
            s.add(protected)
            s.flush()
            match = Match(kind="hash", hash_id=protected.id, media_id=media.id, score=1.0, tier="high", status=status)
        s.add(match)
        s.flush()
        return match.id


# What each law requires a notice to carry, as text the rendered notice must contain.
COMMON = ["/s/ Jo Agent", "jo@example.org", "1 Main St, Springfield", "SHA-256", "/a.jpg"]
REQUIRED = {
    "dmca": [
        "512(c)(3)",
        "Identification of the copyrighted work",  # (ii)
        "Identification of the infringing material",  # (iii), with its location: COMMON's URL
        "+1 555 0100",  # (iv): address, telephone, email
        "good faith belief that use of the material in the manner complained of is not authorized by the\n"
        "   copyright owner, its agent, or the law",  # (v)
        "accurate, and under penalty of perjury",  # (vi)
        "authorized to act on behalf of the owner",  # (vi)
        "Signature",  # (i)
    ],
    "gdpr": [
        "Article 17",
        "The data subject:\n   Ada Lovelace",  # identity
        "The personal data concerned, and where",
        "Art. 17(1)(d)",  # the ground
        "erase these personal data without undue delay",
        "within one month of receipt",  # Art. 12(3)
    ],
    "takedown-act": [
        "TAKE IT DOWN Act",
        "Ada Lovelace",
        "Identification of the intimate visual depiction, and information reasonably sufficient for you to locate it",
        "good faith belief that the intimate visual depiction identified above is not consensual",
        "Contact information",
        "not later than 48\nhours",
        "Signature",
    ],
    "civitai": ["CivitAI", '"Report"', "real person's\nlikeness", "good faith belief", "Contact information"],
    "reddit": [
        "https://www.reddit.com/report",
        "Non-consensual intimate media",
        "good faith belief",
        "Contact information",
    ],
    "deviantart": ["DeviantArt", '"Report"', "good faith belief", "Contact information"],
}


@pytest.mark.parametrize("kind", notices.KINDS)
def test_each_notice_carries_every_element_its_law_requires(napp: App, site: Site, kind: str) -> None:
    match_id = _match(napp, f"{site.url}/a.jpg", face=True)
    draft = service.draft(napp, match_id, kind, actor="test", evidence=["ev-1"])
    missing = [e for e in COMMON + REQUIRED[kind] if e not in draft.text]
    assert not missing, f"{kind} notice lacks {missing}:\n{draft.text}"
    assert "ev-1" in draft.text and draft.notice.status == "drafted" and draft.notice.kind == kind


def test_deadlines_are_counted_as_each_law_counts_them(notice_settings: Settings) -> None:
    sent = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
    custom = notice_settings.model_copy(update={"notices": NoticeSettings(dmca_hours=24, platform_hours=96)})
    assert notices.deadline("takedown-act", sent, custom) == sent + timedelta(hours=48)
    assert notices.deadline("dmca", sent, notice_settings) == sent + timedelta(hours=72)
    assert notices.deadline("dmca", sent, custom) == sent + timedelta(hours=24)
    assert notices.deadline("reddit", sent, custom) == sent + timedelta(hours=96)
    assert notices.deadline("gdpr", sent, custom) == datetime(2026, 2, 28, 9, 30, tzinfo=UTC)  # no 31 February
    assert notices.add_month(datetime(2028, 1, 30, tzinfo=UTC)) == datetime(2028, 2, 29, tzinfo=UTC)
    assert notices.add_month(datetime(2026, 12, 15, tzinfo=UTC)) == datetime(2027, 1, 15, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        notices.deadline("fax", sent, custom)


def _sent(app: App, site: Site, kind: str = "takedown-act") -> tuple[int, int]:
    match_id = _match(app, f"{site.url}/a.jpg")
    notice = service.draft(app, match_id, kind, actor="test").notice
    sent = service.mark_sent(app, notice.id, "abuse@platform.example", actor="test")
    assert sent.sent_at is not None and sent.deadline_at == sent.sent_at + timedelta(hours=48)
    return notice.id, match_id


def _match_status(app: App, match_id: int) -> str:
    with app.store.transaction() as s:
        return s.get(Match, match_id).status  # type: ignore[union-attr]


@pytest.mark.parametrize(("code", "finding"), [(404, "HTTP 404"), (410, "HTTP 410"), (200, "a page instead")])
def test_check_marks_removed_when_the_location_answers_gone(napp: App, site: Site, code: int, finding: str) -> None:
    site.pages["/a.jpg"] = (code, b"<p>This content was removed</p>")
    notice_id, match_id = _sent(napp, site)
    assert _match_status(napp, match_id) == "actioned"
    [result] = service.check(napp, notice_id, actor="test")
    assert result.notice.status == "removed" and finding in (result.notice.finding or "") and not result.escalate
    assert _match_status(napp, match_id) == "removed"
    with pytest.raises(InvalidInput):  # a removed notice is not checked again
        service.check(napp, notice_id, actor="test")


def test_check_marks_still_up_past_the_deadline_and_lists_it_to_escalate(napp: App, site: Site) -> None:
    site.pages["/a.jpg"] = (200, PICTURE)
    _, match_id = _sent(napp, site)
    [early] = service.check(napp, actor="test")  # within the 48 hours: still owed, not escalated
    assert early.notice.status == "sent" and not early.escalate and "same bytes" in (early.notice.finding or "")
    late = datetime.now(UTC) + timedelta(hours=49)
    [result] = service.check(napp, actor="test", now=late)
    assert result.notice.status == "still_up" and result.escalate and result.changed
    assert _match_status(napp, match_id) == "still_up"
    site.pages["/a.jpg"] = (200, images.encode(images.astronaut(), quality=60))  # re-encoded: the same picture
    [again] = service.check(napp, actor="test", now=late)
    assert again.notice.status == "still_up" and "re-encoded" in (again.notice.finding or "")
    site.pages["/a.jpg"] = (200, images.encode(images.grace_hopper()))  # another picture there now
    [gone] = service.check(napp, actor="test", now=late)
    assert gone.notice.status == "removed" and "another picture" in (gone.notice.finding or "")
    assert _match_status(napp, match_id) == "removed"


def test_every_change_is_audited_and_the_response_sealed(napp: App, site: Site) -> None:
    site.pages["/a.jpg"] = (404, b"")
    notice_id, _ = _sent(napp, site)
    with pytest.raises(InvalidInput):  # sent once only
        service.mark_sent(napp, notice_id, "again@example.org", actor="test")
    service.respond(napp, notice_id, "Removed per your request, ticket 42", actor="test")
    service.check(napp, notice_id, actor="test")
    with napp.store.transaction() as s:
        query = select(AuditEvent.action, AuditEvent.actor).where(AuditEvent.entity == "notice")
        events = list(s.execute(query.order_by(AuditEvent.seq)))
        stored = s.scalar(select(TakedownNotice.response_enc))
    assert [tuple(e) for e in events] == [(a, "test") for a in ("notice.drafted", "notice.sent", "notice.response",
                                                                  "notice.checked")]  # fmt: skip
    assert stored is not None and b"ticket 42" not in stored
    assert service.list_notices(napp, "removed")[0].response == "Removed per your request, ticket 42"


def test_a_match_seen_only_on_disk_gets_no_notice(napp: App) -> None:
    match_id = _match(napp, "/srv/photos/a.jpg")
    with pytest.raises(InvalidInput, match="no web address"):
        service.draft(napp, match_id, "dmca", actor="test")


def test_a_gdpr_request_names_a_ground_the_article_has(napp: App, site: Site) -> None:
    match_id = _match(napp, f"{site.url}/a.jpg")
    with pytest.raises(InvalidInput, match="ground"):
        service.draft(napp, match_id, "gdpr", actor="test", ground="z")
    assert "Art. 17(1)(b)" in service.draft(napp, match_id, "gdpr", actor="test", ground="b").text
    assert [n.kind for n in service.list_notices(napp)] == ["gdpr"]  # the refused draft left nothing behind


def test_cli_drafts_marks_sent_checks_and_lists(
    napp: App, site: Site, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    site.pages["/a.jpg"] = (410, b"")
    match_id = _match(napp, f"{site.url}/a.jpg")
    for key, value in {**cli_env, "LIKENESS_FETCH__ALLOW_PRIVATE_NETWORKS": "true"}.items():
        monkeypatch.setenv(key, value)
    from likeness.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    out = str(tmp_path / "notice.txt")
    drafted = runner.invoke(cli, ["draft", str(match_id), "--kind", "dmca", "--out", out])
    assert drafted.exit_code == 0, drafted.output
    assert "penalty of perjury" in Path(out).read_text()
    [notice] = service.list_notices(napp)
    sent = runner.invoke(cli, ["sent", str(notice.id), "--channel", "dmca@platform.example"])
    assert sent.exit_code == 0 and "due" in sent.output, sent.output
    checked = runner.invoke(cli, ["check", "--format", "json"])
    assert checked.exit_code == 0 and '"removed"' in checked.output, checked.output
    listed = runner.invoke(cli, ["list", "--status", "removed", "--format", "json"])
    assert listed.exit_code == 0 and "dmca@platform.example" in listed.output
    assert runner.invoke(cli, ["draft", str(match_id), "--kind", "fax"]).exit_code != 0
    get_settings.cache_clear()
