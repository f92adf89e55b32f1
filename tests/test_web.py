"""The web pages in the system's Chromium against a real uvicorn server: a reviewer logs in, reviews by keyboard
and opens frozen evidence; pictures stay blurred until revealed; a subject sees only their own data, enrolls with
their consent recorded, asks for a takedown and withdraws."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, Request, expect
from skimage import data
from sqlalchemy import func, select

from likeness.registry.consent import consent
from likeness.services import hashes, review, scan, subjects
from likeness.services.app import App
from likeness.settings import EvidenceSettings, Settings
from likeness.store.models import Account, AuditEvent, ConsentText, Sighting, Subject
from tests import images
from tests.pageserver import Server
from tests.website import account, browser, loaded, log_in, needs_chromium, page, site

pytestmark = needs_chromium
__all__ = ["browser", "page", "site"]  # fixtures
PICTURE = images.encode(images.resize(images.astronaut(), 0.7))


@pytest.fixture
def page_server() -> Iterator[str]:
    """A platform's page showing the astronaut picture, for evidence capture."""
    html = b"<!doctype html><title>post 1</title><h1>a post</h1><img src='/a.jpg'>"
    served = Server({"/post/1": (200, {"Content-Type": "text/html"}, html),
                     "/a.jpg": (200, {"Content-Type": "image/jpeg"}, PICTURE)})  # fmt: skip
    yield f"127.0.0.1:{served.port}"
    served.close()


@pytest.fixture
def settings(settings: Settings, page_server: str) -> Settings:
    return settings.model_copy(update={"evidence": EvidenceSettings(allow_hosts=[page_server])})


def _catalogue(app: App, tmp_path: Path, page_server: str) -> tuple[int, int]:
    """Eileen and Grace enrolled; a folder with a copy of each and a repost of a protected cat picture scanned;
    Eileen's copy also seen on the page server."""
    a = subjects.enroll(app, "Eileen", [subjects.Photo("a.jpg", images.encode(images.astronaut_face_crop()))],
                        actor="test").subject_id  # fmt: skip
    b = subjects.enroll(app, "Grace", [subjects.Photo("b.jpg", images.encode(images.grace_hopper()))],
                        actor="test").subject_id  # fmt: skip
    hashes.require_bank(app, "ncii", create=True, actor="test")
    hashes.add_files(app, "ncii", [subjects.Photo("cat.png", images.encode(data.chelsea(), "PNG"))], actor="test",
                     submission="a person's picture")  # fmt: skip
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "eileen.jpg").write_bytes(PICTURE)
    images.write(tmp_path / "scan" / "grace.png", images.resize(images.grace_hopper(), 0.8), "PNG")
    images.write(tmp_path / "scan" / "cat.jpg", images.resize(data.chelsea(), 0.7), quality=70)
    scan.scan(app, [str(tmp_path / "scan")], actor="test")
    eileen = next(m for m in review.list_matches(app) if m.subject_id == a)
    url = f"http://{page_server}/a.jpg"
    with app.store.transaction() as s:
        s.add(Sighting(media_id=eileen.media_id, location=url, location_hash=hashlib.sha256(url.encode()).digest(),
                       page_url=f"http://{page_server}/post/1", platform="test"))  # fmt: skip
    return a, b


def test_a_reviewer_reviews_by_keyboard_and_opens_the_evidence(
    app: App, site: str, page: Page, tmp_path: Path, page_server: str
) -> None:
    a, _ = _catalogue(app, tmp_path, page_server)
    log_in(page, site, account(app, "reviewer"))
    expect(page).to_have_url(f"{site}/review")
    assert page.locator("table.queue tbody tr").count() == len(review.list_matches(app, status="new")) == 3
    assert loaded(page, "table.queue img")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/review/matches/\d+$"))
    first = int(page.url.rsplit("/", 1)[1])
    assert first == review.list_matches(app, status="new")[0].id
    page.keyboard.press("n")  # the note, by keyboard
    page.keyboard.type("same face, same mole")
    page.evaluate("document.activeElement.blur()")
    eileen = next(m for m in review.list_matches(app) if m.subject_id == a)
    page.goto(f"{site}/review/matches/{eileen.id}")
    assert loaded(page, ".compare img")
    page.locator("#note").fill("her photo, reposted")
    page.evaluate("document.activeElement.blur()")
    with page.expect_navigation():
        page.keyboard.press("c")  # confirmed: the page is frozen at once (evidence.capture_on_confirm)
    decided = review.get_match(app, eileen.id)
    assert decided.status == "confirmed" and decided.note == "her photo, reposted"
    assert decided.reviewer is not None and decided.reviewer.startswith("token:")
    page.goto(f"{site}/review/matches/{eileen.id}")
    page.get_by_role("link", name=re.compile(r"^Capture \d+")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"for match #{eileen.id}")
    expect(page.locator("dl.facts")).to_contain_text(f"http://{page_server}/post/1")
    assert loaded(page, "figure.screenshot img")


def test_sensitive_pictures_stay_blurred_until_revealed_and_grayscale_holds(
    app: App, site: str, page: Page, tmp_path: Path, page_server: str
) -> None:
    _catalogue(app, tmp_path, page_server)
    cat = next(m for m in review.list_matches(app) if m.kind == "hash")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    log_in(page, site, account(app, "reviewer"))
    page.goto(f"{site}/review/matches/{cat.id}")
    assert loaded(page, "figure.pic img")
    assert not [u for u in asked if "clear=1" in u], "a blurred picture's clear copy was fetched unasked"
    blurred = page.locator("figure.pic img").screenshot()
    page.keyboard.press("v")
    expect(page.locator("figure.pic img")).to_have_attribute("src", f"/review/matches/{cat.id}/found.jpg?clear=1")
    assert loaded(page, "figure.pic img") and page.locator("figure.pic img").screenshot() != blurred
    assert [u for u in asked if u.endswith(f"/review/matches/{cat.id}/found.jpg?clear=1")]
    page.keyboard.press("g")
    page.reload()
    expect(page.locator("html")).to_have_class(re.compile("grayscale"))  # kept across pages
    assert page.evaluate("getComputedStyle(document.querySelector('figure.pic img')).filter") == "grayscale(1)"


def test_subject_a_never_sees_subject_bs_data(
    app: App, site: str, page: Page, tmp_path: Path, page_server: str
) -> None:
    a, b = _catalogue(app, tmp_path, page_server)
    theirs = next(m for m in review.list_matches(app) if m.subject_id == b)
    cat = next(m for m in review.list_matches(app) if m.kind == "hash")
    log_in(page, site, account(app, "subject", subject_id=a))
    expect(page).to_have_url(f"{site}/me")
    expect(page.get_by_role("heading", level=1)).to_have_text("Eileen")
    assert page.locator("ul.cards li").count() == 1 and loaded(page, "main img")
    paths = [
        f"/me/matches/{theirs.id}",
        f"/me/matches/{theirs.id}/found.jpg",
        f"/me/matches/{cat.id}",
        f"/review/matches/{theirs.id}",
        f"/review/matches/{theirs.id}/found.jpg",
        f"/review/subjects/{b}/reference.jpg",
        f"/review/media/{theirs.media_id}",
        "/review",
        "/overview",
    ]
    for path in paths:
        answer = page.request.get(site + path)
        assert answer.status in (403, 404), (path, answer.status)
        assert "Grace" not in answer.text()
    posted = page.request.post(f"{site}/me/matches/{theirs.id}/takedown", form={"csrf": _csrf(page)})
    assert posted.status == 404 and review.get_match(app, theirs.id).takedown_requested_at is None


def _csrf(page: Page) -> str:
    return str(page.locator("input[name=csrf]").first.get_attribute("value"))


def test_a_person_enrolls_with_consent_asks_a_takedown_and_withdraws(
    app: App, site: str, page: Page, tmp_path: Path, page_server: str
) -> None:
    _catalogue(app, tmp_path, page_server)
    username = account(app, "subject")  # made by an operator; waits to enroll
    log_in(page, site, username)
    expect(page).to_have_url(f"{site}/me/enroll")
    shown = consent(app.settings.web.consent_version)
    expect(page.locator("pre.consent")).to_have_text(shown.text.strip())
    photo = tmp_path / "me.jpg"
    images.write(photo, images.astronaut_face_crop())
    page.get_by_label("Your name").fill("Eileen C.")
    page.get_by_label("Photos of yourself").set_input_files(str(photo))
    page.get_by_role("button", name="Enroll and search").click()
    assert page.url.endswith("/me/enroll"), "the form went without the consent ticked"
    page.get_by_label("I have read this and I agree").check()
    page.get_by_role("button", name="Enroll and search").click()
    expect(page).to_have_url(f"{site}/me")
    expect(page.get_by_role("heading", level=1)).to_have_text("Eileen C.")
    with app.store.transaction() as s:
        me = s.scalar(select(Account).where(Account.username == username))
        assert me is not None and me.subject_id is not None
        mine = s.get(Subject, me.subject_id)
        assert mine is not None and mine.enrolled_by == "self" and mine.consent_sha256 == shown.sha256
        assert s.get(ConsentText, shown.sha256).text == shown.text  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).where(AuditEvent.action == "subject.consented")) == 1
    subject_id = me.subject_id
    page.locator("ul.cards a").first.click()
    page.get_by_role("button", name="Ask for a takedown").click()
    expect(page.locator("main")).to_contain_text("takedown asked")
    asked = review.list_matches(app, takedown_requested=True)
    assert [m.subject_id for m in asked] == [subject_id]
    page.goto(f"{site}/me/withdraw")
    page.get_by_label("Type WITHDRAW to confirm").fill("WITHDRAW")
    page.get_by_role("button", name="Withdraw and delete everything").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Withdrawn")
    assert subject_id not in {s.id for s in subjects.list_subjects(app)}
    assert not [m for m in review.list_matches(app, limit=None) if m.subject_id == subject_id]
    log_in(page, site, username)
    expect(page.locator("p.error")).to_contain_text("wrong username or password")


def test_no_picture_bytes_leave_the_protect_page(app: App, site: str, page: Page, tmp_path: Path) -> None:
    """The picture is hashed in the page; the one request it makes carries the hash, and the hash is pdqhash's."""
    from likeness.analyze import hashing

    picture = tmp_path / "private.jpg"
    pixels = images.resize(data.chelsea(), 0.9)
    raw = images.write(picture, pixels, quality=92).read_bytes()
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r))
    page.goto(f"{site}/protect")
    page.get_by_label("Picture").set_input_files(str(picture))
    expected = hashing.pdq(np.asarray(Image.open(picture).convert("RGB")))[0].hex()
    expect(page.locator("#pdq")).to_have_text(expected)
    with page.expect_response(f"{site}/protect") as answered:
        page.get_by_role("button", name="Send the hash only").click()
    assert answered.value.ok, answered.value.text()
    number = page.locator("#case").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", number)
    assert re.fullmatch(r"\d{8}", page.locator("#pin").inner_text())
    posts = [r for r in sent if r.method != "GET"]
    assert [r.url for r in posts] == [f"{site}/protect"]
    body = posts[0].post_data_buffer or b""
    assert raw[:4096] not in body and len(body) < 512 and expected.encode() in body
    assert all(r.url.startswith(site) for r in sent)
    found = hashes.lookup(app, [expected])[0]
    assert [h.bank for h in found] == ["ncii"] and found[0].distance == 0


@pytest.mark.parametrize("width", [390, 1280])
def test_pages_fit_a_phone_and_a_laptop(
    app: App, site: str, page: Page, tmp_path: Path, page_server: str, width: int
) -> None:
    """Nothing wider than the screen (no sideways scrolling), and every page has one main heading."""
    a, _ = _catalogue(app, tmp_path, page_server)
    page.set_viewport_size({"width": width, "height": 800})
    first = review.list_matches(app)[0]
    pages = ["/login", "/protect", "/protect/case"]
    log_in(page, site, account(app, "reviewer"))
    pages_in = ["/review", f"/review/matches/{first.id}", f"/review/media/{first.media_id}", "/overview"]
    for path in pages + pages_in:
        page.goto(site + path)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, (path, wide)
        assert page.locator("h1").count() == 1, path
    page.context.clear_cookies()
    log_in(page, site, account(app, "subject", subject_id=a))
    mine = review.list_matches(app, subjects={a})[0]
    for path in ["/me", f"/me/matches/{mine.id}", "/me/withdraw"]:
        page.goto(site + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
