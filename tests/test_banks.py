"""Banks (enable, per-bank threshold, negative), withdrawal, and the plain hash-list formats."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from likeness.registry.hashlists import HashListError, parse
from likeness.services import corpus, hashes, review, scan
from likeness.services.app import App
from likeness.store.models import Match, ProtectedHash
from tests import images
from tests.images import photos


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> corpus.Corpus:
    return corpus.build(tmp_path_factory.mktemp("corpus"))


def _hash_hits(app: App) -> list[review.review.MatchRow]:
    return [r for r in review.list_matches(app, limit=None) if r.kind == "hash"]


def _repost(tmp_path: Path, made: corpus.Corpus, name: str, quality: int) -> Path:
    """Another copy of the protected picture (new bytes, so a scan analyses it afresh)."""
    return images.write(tmp_path / "later" / name, images.resize(images.NO_FACE["chelsea"](), 0.8), quality=quality)


def test_withdrawal_removes_the_hash_its_matches_and_every_later_match(
    app: App, made: corpus.Corpus, tmp_path: Path
) -> None:
    added = hashes.add_files(app, "ncii", photos([made.protected]), submission="case-17", actor="test")[0]
    scan.scan(app, [str(made.scan_dir / "reposts")], actor="test")  # the scan keeps its index warm
    assert len(_hash_hits(app)) == 1
    assert hashes.withdraw(app, actor="test", submission="case-17") == 1
    later = scan.scan(app, [str(_repost(tmp_path, made, "a.jpg", 70))], actor="test")
    assert later.analyzed == 1 and later.hash_matches == 0
    with app.store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ProtectedHash)) == 0
        assert session.scalar(select(func.count()).select_from(Match)) == 0
    assert added.hash_id is not None


def test_disabled_bank_and_per_bank_threshold(app: App, made: corpus.Corpus) -> None:
    hashes.add_files(app, "ncii", photos([made.protected]), actor="test")
    hashes.configure_bank(app, "ncii", enabled=False, actor="test")
    assert scan.scan(app, [str(made.scan_dir / "reposts")], actor="test").hash_matches == 0
    distance = 14  # of the corpus repost (resized to 70%, JPEG q60) from the protected original
    hashes.configure_bank(app, "ncii", enabled=True, max_distance=distance - 1, actor="test")
    assert (
        hashes.add_files(app, "ncii", photos([made.protected]), actor="test")[0].catalogue_matches == 0
    )  # already there: no search
    assert hashes.add_files(app, "ncii2", photos([made.protected]), actor="test")[0].catalogue_matches == 1
    hashes.configure_bank(app, "ncii2", max_distance=distance - 1, actor="test")
    assert hashes.add_files(app, "ncii3", photos([made.protected]), actor="test") and len(_hash_hits(app)) == 2


def test_threshold_above_the_global_one_is_refused(app: App) -> None:
    with pytest.raises(Exception, match="between 0 and the global PDQ threshold 31"):
        hashes.configure_bank(app, "ncii", max_distance=40, actor="test")


def test_negative_bank_vetoes_matches_in_both_directions(app: App, made: corpus.Corpus, tmp_path: Path) -> None:
    hashes.configure_bank(app, "known-fp", negative=True, actor="test")
    hashes.add_files(app, "known-fp", photos([made.protected]), actor="test")
    assert hashes.add_files(app, "ncii", photos([made.protected]), actor="test")[0].catalogue_matches == 0
    scan.scan(app, [str(made.scan_dir / "reposts"), str(_repost(tmp_path, made, "b.jpg", 75))], actor="test")
    assert _hash_hits(app) == []
    hashes.configure_bank(app, "known-fp", enabled=False, actor="test")
    assert scan.scan(app, [str(_repost(tmp_path, made, "c.jpg", 80))], actor="test").hash_matches == 1


def test_export_then_import_round_trips(app: App, made: corpus.Corpus, tmp_path: Path) -> None:
    hashes.add_files(app, "ncii", photos([made.protected, made.reference]), actor="test")
    for fmt in ("text", "csv"):
        listing = tmp_path / f"list.{fmt}"
        listing.write_text(hashes.export_list(app, "ncii", fmt))
        new, present, _ = hashes.import_list(
            app, f"copy-{fmt}", listing.read_text(), fmt, actor="test", name=listing.name
        )
        assert (new, present) == (2, 0)
        assert hashes.export_list(app, f"copy-{fmt}", "text") == hashes.export_list(app, "ncii", "text")
    assert hashes.import_list(
        app, "copy-text", (tmp_path / "list.text").read_text(), "text", actor="test", name=(tmp_path / "list.text").name
    )[:2] == (0, 2)


def test_malformed_lists_name_every_bad_line_and_import_nothing() -> None:
    good = "f" * 64
    with pytest.raises(HashListError, match=r"2 malformed.*line 2: not a PDQ hash.*line 4: not a PDQ hash"):
        parse(f"{good}\nnot-a-hash\n# comment\n{good[:-1]}\n", "text")
    with pytest.raises(HashListError, match=r"line 3: quality must be a whole number from 0 to 100"):
        parse(f"hash,quality,id\n{good},90,a\n{good},abc,b\n", "csv")
    with pytest.raises(HashListError, match="expected hash"):
        parse(f"{good},1,2,3\n", "csv")
    assert [(e.quality, e.external_id) for e in parse(f"{good},90,x\n{good}\n", "csv")] == [(90, "x"), (None, None)]


def test_cli_import_reports_bad_lines_and_exits_1(
    cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from likeness.cli.main import app as cli
    from likeness.settings import get_settings

    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    bad = tmp_path / "bad.txt"
    bad.write_text("f" * 64 + "\nzzz\n")
    result = CliRunner().invoke(cli, ["hashes", "import", str(bad), "--bank", "ncii", "--create-bank"])
    get_settings.cache_clear()
    assert result.exit_code == 2  # malformed input: a usage error
    assert "1 malformed line(s), nothing imported: line 2: not a PDQ hash" in " ".join(result.output.split())


def test_flood_of_matches_for_one_hash_goes_on_hold(app: App, made: corpus.Corpus, tmp_path: Path) -> None:
    app.settings.hashes.flood_limit = 2
    hashes.add_files(app, "ncii", photos([made.protected]), actor="test")
    copies = [_repost(tmp_path, made, f"{q}.jpg", q) for q in (60, 70, 80, 90)]
    scan.scan(app, [str(copies[0]), str(copies[1])], actor="test")
    assert sorted(r.status for r in _hash_hits(app)) == ["new", "new"]
    scan.scan(app, [str(c) for c in copies[2:]], actor="test")
    assert sorted(r.status for r in _hash_hits(app)) == ["on_hold"] * 4
    held = review.list_matches(app, status="on_hold", limit=None)
    review.set_status(app, held[0].id, "confirmed", actor="test")  # a reviewer can still act on a held match
    assert len(review.list_matches(app, status="on_hold", limit=None)) == 3
