"""Matching on the corpus made from package-shipped pictures: both directions, tiers, allowlists, withdrawal."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from likeness.match.policy import allowlisted, face_tier, hash_tier, suppressed
from likeness.services import corpus, hashes, review, scan, subjects
from likeness.services.app import App
from likeness.settings import FaceSettings, HashSettings
from likeness.store.models import Face, Match, SubjectReference
from tests.images import photos


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> corpus.Corpus:
    return corpus.build(tmp_path_factory.mktemp("corpus"))


def _face_hits(app: App) -> set[str]:
    return {r.location for r in review.list_matches(app, limit=None) if r.kind == "face"}


def _assert_exact(found: set[str], made: corpus.Corpus) -> None:
    assert {str(p) for p in made.subject} <= found, "a copy of the subject was missed"
    assert not found & {str(p) for p in made.others + made.no_face}, "another person or a no-face picture matched"


def test_enroll_then_scan_finds_every_copy_and_nothing_else(app: App, made: corpus.Corpus) -> None:
    subjects.enroll(app, "Eileen", photos([made.reference]), actor="test")
    summary = scan.scan(app, [str(made.scan_dir)], actor="test")
    assert summary.face_matches == len(made.subject)
    _assert_exact(_face_hits(app), made)


def test_scan_then_enroll_searches_the_whole_catalogue(app: App, made: corpus.Corpus) -> None:
    scan.scan(app, [str(made.scan_dir)], actor="test")
    enrolled = subjects.enroll(app, "Eileen", photos([made.reference]), actor="test")
    assert enrolled.catalogue_matches == len(made.subject)
    _assert_exact(_face_hits(app), made)


def test_other_people_are_not_matched_to_a_second_subject(app: App, made: corpus.Corpus) -> None:
    subjects.enroll(app, "Eileen", photos([made.reference]), actor="test")
    grace = subjects.enroll(app, "Grace", photos([made.others[0]]), actor="test")
    scan.scan(app, [str(made.scan_dir)], actor="test")
    by_subject: dict[str, set[str]] = {}
    for r in review.list_matches(app, limit=None):
        by_subject.setdefault(r.target, set()).add(Path(r.location).parent.name)
    assert by_subject["Eileen"] == {"subject"} and by_subject["Grace"] == {"others"}
    assert grace.catalogue_matches == 0


def test_protected_hash_matches_the_repost_both_directions(app: App, made: corpus.Corpus) -> None:
    added = hashes.add_files(app, "ncii", photos([made.protected]), actor="test")[0]
    assert added.created and added.quality is not None and added.quality >= 50
    scan.scan(app, [str(made.scan_dir)], actor="test")
    hits = {r.location: r for r in review.list_matches(app, limit=None) if r.kind == "hash"}
    assert set(hits) == {str(p) for p in made.reposts}
    assert all(r.target == "ncii" and r.score <= 31 for r in hits.values())
    again = hashes.add_files(app, "other-bank", photos([made.protected]), actor="test")[0]
    assert again.created and again.catalogue_matches == len(made.reposts)


def test_withdrawal_purges_embeddings_and_matches(app: App, made: corpus.Corpus) -> None:
    enrolled = subjects.enroll(app, "Eileen", photos([made.reference]), actor="test")
    scan.scan(app, [str(made.scan_dir)], actor="test")
    counts = subjects.withdraw(app, enrolled.subject_id, actor="test")
    assert counts == {"references": 1, "matches": len(made.subject)}
    with app.store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SubjectReference)) == 0
        assert session.scalar(select(func.count()).select_from(Match)) == 0
        assert session.scalar(select(func.count()).select_from(Face)) > 0  # the catalogue stays
    assert subjects.list_subjects(app) == []


def test_allowlisted_domain_suppresses_only_when_every_sighting_is_allowlisted() -> None:
    assert allowlisted("https://img.example.org/a.jpg", ["example.org"])
    assert not allowlisted("https://notexample.org/a.jpg", ["example.org"])
    assert not allowlisted("/home/me/a.jpg", ["example.org"])
    assert suppressed(["https://example.org/a", "https://cdn.example.org/b"], ["example.org"])
    assert not suppressed(["https://example.org/a", "https://abuse.site/b"], ["example.org"])
    assert not suppressed(["https://example.org/a"], [])


def test_tiers_follow_thresholds() -> None:
    faces = FaceSettings(tier_low=0.9, tier_medium=0.93, tier_high=0.96)
    assert [face_tier(s, faces.tiers(faces.model)) for s in (0.97, 0.95, 0.91, 0.85)] == ["high", "medium", "low", None]
    assert [hash_tier(d, HashSettings()) for d in (0, 10, 11, 20, 21, 31, 32)] == [
        "high",
        "high",
        "medium",
        "medium",
        "low",
        "low",
        None,
    ]


def test_hash_index_takes_new_hashes_without_a_rebuild(
    app: App, made: corpus.Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    from likeness.analyze import pdq
    from likeness.analyze.pdq_index import PdqIndex
    from likeness.match.hashes import HashIndex, Hit
    from likeness.media import decode
    from likeness.registry.hashes import StoredHash, add_hash

    with app.store.transaction() as session:
        index = HashIndex.load(session, app.settings.hashes)
    assert len(index.index) == 0

    def no_rebuild(*args: object) -> None:
        raise AssertionError("the index was rebuilt")

    monkeypatch.setattr(PdqIndex, "build", no_rebuild)
    digest, quality = pdq(decode(made.protected.read_bytes(), app.settings.media).pixels)
    with app.store.transaction() as session:
        hash_id, _ = add_hash(session, "ncii", StoredHash(0, digest, quality, None), actor="test")
        index.refresh(session)
        assert index.near(session, [(0, digest)]) == [Hit(0, hash_id, 0, 0, "ncii")]
