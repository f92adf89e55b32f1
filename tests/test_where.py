"""Records that say where: every sighting of a matched media on its matches (with platform, author, posted time),
re-posts of known bytes reaching the match, hash matches naming their hash, bank and submission, rules lifted
re-searching the catalogue, duplicate enrolment refused until a choice is made, and the actor given recorded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from likeness.cli.main import app as cli
from likeness.errors import PossibleDuplicate
from likeness.services import corpus, hashes, review, scan, stats, subjects
from likeness.services.app import App
from likeness.services.hashes import HashIn
from likeness.services.scan import Run, ScanSummary
from likeness.settings import Settings, get_settings
from likeness.sources.base import MediaRef
from likeness.store.models import AuditEvent, Match
from tests.images import photos


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> corpus.Corpus:
    return corpus.build(tmp_path_factory.mktemp("corpus"))


def _post(n: int, author: str, domain: str = "example.org") -> MediaRef:
    """A crawled post's picture, as a crawl hands it to the scan (its platform's metadata in ``meta``)."""
    meta = {"author": author, "created": f"2026-01-0{n}T10:00:00+00:00"}
    url = f"https://cdn.{domain}/{n}.jpg"
    return MediaRef(url, f"https://{domain}/post/{n}", "reddit:r/pics/new", f"post-{n}", meta=meta)


def _submit(app: App, refs: list[tuple[MediaRef, bytes]]) -> ScanSummary:
    summary = ScanSummary()
    with ExitStack() as stack:
        run = Run(app.store, app.settings, summary, stack, None, actor="test", indexes=app.indexes())
        for ref, data in refs:
            run.submit(ref, data)
        run.drain(0)
    return summary


def test_a_repost_of_known_bytes_on_a_new_page_shows_on_the_existing_match(app: App, made: corpus.Corpus) -> None:
    subjects.enroll(app, "Eileen", photos([made.reference]), actor="test")
    picture = made.subject[0].read_bytes()
    first = _submit(app, [(_post(1, "alice"), picture)])
    assert first.face_matches == 1
    [match] = review.list_matches(app, kind="face")
    assert [s.page_url for s in match.sightings] == ["https://example.org/post/1"]

    again = _submit(app, [(_post(2, "bob", "elsewhere.net"), picture)])
    assert again.already_known == 1 and again.face_matches == 0  # the same match, not a new one
    [match] = review.list_matches(app, kind="face")
    assert [(s.url, s.page_url, s.platform, s.author) for s in match.sightings] == [
        ("https://cdn.example.org/1.jpg", "https://example.org/post/1", "reddit", "alice"),
        ("https://cdn.elsewhere.net/2.jpg", "https://elsewhere.net/post/2", "reddit", "bob"),
    ]
    assert match.sightings[1].posted_at == datetime(2026, 1, 2, 10, tzinfo=UTC)
    first_seen = match.sightings[0]
    _submit(app, [(_post(1, "alice"), picture)])  # seen at the first place again: no new sighting, later last_seen
    [match] = review.list_matches(app, kind="face")
    assert len(match.sightings) == 2 and match.sightings[0].last_seen > first_seen.last_seen
    media = review.get_media(app, match.media_id)
    assert len(media.sightings) == 2 and [m.id for m in media.matches] == [match.id]


def test_a_known_media_seen_off_its_allowlisted_domain_is_matched_then(app: App, made: corpus.Corpus) -> None:
    subjects.enroll(app, "Eileen", photos([made.reference]), actor="test", allowed_domains=["example.org"])
    picture = made.subject[0].read_bytes()
    assert _submit(app, [(_post(1, "eileen"), picture)]).face_matches == 0  # seen where she allows it only
    _submit(app, [(_post(2, "mallory", "elsewhere.net"), picture)])
    [match] = review.list_matches(app, kind="face")
    assert {s.author for s in match.sightings} == {"eileen", "mallory"}


def test_removing_an_allowlisted_domain_searches_the_catalogue_again(app: App, made: corpus.Corpus) -> None:
    enrolled = subjects.enroll(app, "Eileen", photos([made.reference]), actor="test", allowed_domains=["example.org"])
    _submit(app, [(_post(1, "eileen"), made.subject[0].read_bytes())])
    assert review.list_matches(app) == []
    info = subjects.set_allowed_domains(app, enrolled.subject_id, [], actor="test")
    assert info.allowed_domains == [] and len(review.list_matches(app, kind="face")) == 1


def test_hash_matches_name_the_protected_hash_bank_and_submission(app: App, made: corpus.Corpus) -> None:
    added = hashes.add_files(app, "ncii", photos([made.protected]), actor="test", submission="case-9")[0]
    scan.scan(app, [str(made.scan_dir / "reposts")], actor="test")
    [match] = review.list_matches(app, kind="hash")
    assert (match.hash_id, match.bank, match.submission) == (added.hash_id, "ncii", "case-9")
    info = hashes.get_hash(app, match.hash_id or 0)
    assert (info.bank, info.submission, info.pdq_hex) == ("ncii", "case-9", added.pdq_hex)


def test_a_re_enabled_bank_finds_media_seen_while_it_was_off(app: App, made: corpus.Corpus) -> None:
    hashes.configure_bank(app, "ncii", actor="test", enabled=False)
    hashes.add_files(app, "ncii", photos([made.protected]), actor="test")
    assert scan.scan(app, [str(made.scan_dir / "reposts")], actor="test").hash_matches == 0
    assert review.list_matches(app) == []
    hashes.configure_bank(app, "ncii", actor="test", enabled=True)
    [match] = review.list_matches(app, kind="hash")
    assert match.sightings[0].url.endswith("cat_repost.jpg")


def test_lifting_a_negative_banks_veto_searches_the_catalogue_again(app: App, made: corpus.Corpus) -> None:
    [fp] = hashes.add_files(app, "known-fp", photos([made.protected]), actor="test")
    hashes.configure_bank(app, "known-fp", actor="test", negative=True)
    hashes.add_files(app, "ncii", photos([made.protected]), actor="test")
    scan.scan(app, [str(made.scan_dir / "reposts")], actor="test")
    assert review.list_matches(app) == []  # vetoed
    hashes.withdraw(app, actor="test", hash_ids=[fp.hash_id or 0])
    assert len(review.list_matches(app, kind="hash")) == 1


def test_disabling_a_negative_bank_lifts_its_veto(app: App, made: corpus.Corpus) -> None:
    hashes.add_files(app, "known-fp", photos([made.protected]), actor="test")
    hashes.configure_bank(app, "known-fp", actor="test", negative=True)
    hashes.add_files(app, "ncii", photos([made.protected]), actor="test")
    scan.scan(app, [str(made.scan_dir / "reposts")], actor="test")
    assert review.list_matches(app) == []
    hashes.configure_bank(app, "known-fp", actor="test", enabled=False)
    assert len(review.list_matches(app, kind="hash")) == 1


def test_hashes_sent_as_hex_are_looked_up_like_hma(app: App, made: corpus.Corpus) -> None:
    [added] = hashes.add_files(app, "ncii", photos([made.protected]), actor="test")
    assert added.pdq_hex is not None
    [stored, bad] = hashes.add_hashes(app, "client", [HashIn("f" * 64, 90), HashIn("xyz")], actor="test")
    assert stored.created and bad.error and "64 hexadecimal" in bad.error
    [near, nothing] = hashes.lookup(app, [added.pdq_hex, "0" * 64])
    assert [(h.hash_id, h.bank, h.distance) for h in near] == [(added.hash_id, "ncii", 0)] and nothing == []
    hashes.configure_bank(app, "ncii", actor="test", enabled=False)
    assert hashes.lookup(app, [added.pdq_hex]) == [[]]  # the index follows the bank's rules at once


def test_enrolling_the_same_person_twice_needs_a_choice(app: App, made: corpus.Corpus) -> None:
    first = subjects.enroll(app, "Eileen Collins", photos([made.reference]), actor="test")
    with pytest.raises(PossibleDuplicate) as same_name:
        subjects.enroll(app, "eileen  collins", photos([made.subject[2]]), actor="test")
    assert same_name.value.candidates == [first.subject_id]
    with pytest.raises(PossibleDuplicate) as same_face:
        subjects.enroll(app, "E. C.", photos([made.subject[2]]), actor="test")
    assert same_face.value.candidates == [first.subject_id]
    added = subjects.enroll(app, "", photos([made.subject[2]]), actor="test", add_to=first.subject_id)
    assert added.added_to_existing and subjects.get_subject(app, first.subject_id).references == 2
    forced = subjects.enroll(app, "E. C.", photos([made.subject[2]]), actor="test", force_new=True)
    assert forced.subject_id != first.subject_id and len(subjects.list_subjects(app)) == 2
    assert [s.id for s in subjects.list_subjects(app, only={forced.subject_id})] == [forced.subject_id]


def test_enrolling_someone_not_enrolled_is_not_refused(app: App, made: corpus.Corpus) -> None:
    subjects.enroll(app, "Eileen", photos([made.reference]), actor="test")
    assert subjects.enroll(app, "Grace", photos([made.others[0]]), actor="test").subject_id


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("LIKENESS_HOME", str(settings.home))
    monkeypatch.setenv("LIKENESS_DATABASE_URL", str(settings.database_url))

    def invoke(*args: str) -> tuple[int, str, str]:
        get_settings.cache_clear()
        result = CliRunner().invoke(cli, list(args))
        get_settings.cache_clear()
        return result.exit_code, result.stdout, result.stderr

    yield invoke


def test_the_cli_warns_of_a_duplicate_and_asks_for_a_choice(run: object, made: corpus.Corpus) -> None:
    ref = str(made.reference)
    assert run("subjects", "add", "--name", "Eileen", ref)[0] == 0  # type: ignore[operator]
    code, stdout, stderr = run("subjects", "add", "--name", "Eileen", ref)  # type: ignore[operator]
    assert code == 2 and "warning" in stderr and "subject 1: Eileen" in stderr and "--add-to" in stderr
    assert "Traceback" not in stderr and "enrolled" not in stdout
    code, stdout, _ = run("subjects", "add", "--name", "Eileen", "--add-to", "1", ref)  # type: ignore[operator]
    assert code == 0 and "added to subject 1" in stdout
    code, stdout, _ = run("subjects", "add", "--name", "Eileen", "--new", ref)  # type: ignore[operator]
    assert code == 0 and "subject 2 enrolled" in stdout


def test_the_actor_given_is_the_one_audited(app: App, made: corpus.Corpus) -> None:
    enrolled = subjects.enroll(app, "Eileen", photos([made.reference]), actor="user:7")
    scan.scan(app, [str(made.scan_dir / "subject")], actor="token:3")
    [match, *_] = review.list_matches(app)
    reviewed = review.set_status(app, match.id, "confirmed", actor="user:8", note="reported to the host")
    assert reviewed.status == "confirmed" and reviewed.note == "reported to the host"
    hashes.configure_bank(app, "ncii", actor="user:9", enabled=False)
    subjects.withdraw(app, enrolled.subject_id, actor="user:10")
    with app.store.transaction() as session:
        actors = {action: actor for action, actor in session.execute(select(AuditEvent.action, AuditEvent.actor))}
        assert session.scalar(select(Match.note_enc).where(Match.id == match.id)) != b"reported to the host"
    assert actors["subject.enrolled"] == "user:7" and actors["match.created"] == "token:3"
    assert actors["match.confirmed"] == "user:8" and actors["bank.updated"] == "user:9"
    assert actors["subject.withdrawn"] == "user:10"
    assert "cli" not in actors.values()


def test_stats_count_what_is_held(app: App, made: corpus.Corpus) -> None:
    subjects.enroll(app, "Eileen", photos([made.reference]), actor="test")
    scan.scan(app, [str(made.scan_dir / "subject")], actor="test")
    counted = stats.stats(app)
    assert counted.subjects == 1 and counted.media == len(made.subject)
    assert counted.matches == {"new": counted.matches_by_kind["face"]} and counted.faces >= len(made.subject)


def test_an_analysis_is_matched_without_storing_anything(app: App, made: corpus.Corpus) -> None:
    from likeness.analyze import Pipeline
    from likeness.match.faces import FaceHit
    from likeness.match.indexes import match_analysis

    enrolled = subjects.enroll(app, "Eileen", photos([made.reference]), actor="test")
    analysis = Pipeline(app.settings).analyze(made.subject[0].read_bytes())
    with app.store.transaction() as session:
        hits = match_analysis(session, analysis, app.settings)
        assert session.scalar(select(Match.id)) is None
    assert [h.subject_id for h in hits if isinstance(h, FaceHit)] == [enrolled.subject_id]
