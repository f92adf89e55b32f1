"""Folders as the world makes them: special files, loops, unreadable folders, odd names, deep trees. Each ends as a
recorded error or a normal analysis, and the scan always completes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text

from likeness.services import scan
from likeness.services.app import App
from likeness.sources import MediaRef, Refused, discover
from likeness.store.models import Media, Sighting
from tests import images

pytestmark = pytest.mark.timeout(300)


def _errors(summary: scan.ScanSummary) -> dict[str, str]:
    return {Path(e.location).name: e.kind for e in summary.errors}


def test_special_files_are_reported_and_never_read(app: App, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    images.write(folder / "face.jpg", images.astronaut_face_crop())
    os.mkfifo(folder / "pipe.jpg")  # opening it for reading would block forever
    (folder / "zero.jpg").symlink_to("/dev/zero")  # reading it would never end
    (folder / "null").symlink_to("/dev/null")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock.png"))
    (folder / "dangling.jpg").symlink_to(folder / "nothing-here.jpg")
    try:
        summary = scan.scan(app, [str(folder)], actor="test")
    finally:
        server.close()
    assert summary.analyzed == 1
    assert _errors(summary) == {
        "pipe.jpg": "not_regular_file",
        "zero.jpg": "not_regular_file",
        "null": "not_regular_file",
        "sock.png": "not_regular_file",
        "dangling.jpg": "unreadable",
    }


def test_link_loops_deep_trees_and_names_that_are_not_utf8(app: App, tmp_path: Path) -> None:
    root = tmp_path / "in"
    images.write(root / "a" / "face.jpg", images.astronaut_face_crop())
    (root / "a" / "loop").symlink_to("..")  # a/loop/a/loop/... for ever
    (root / "also_a").symlink_to(root / "a")  # the same folder again by another name: walked once
    deep = os.fsencode(root / "deep")
    os.makedirs(deep)
    fd = os.open(deep, os.O_RDONLY)
    for _ in range(2500):  # 5,000+ characters: past PATH_MAX, and past any recursion limit
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    bottom = os.open("bottom.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(bottom, images.encode(images.NO_FACE["coffee"](), "PNG"))
    os.close(bottom)
    os.close(fd)
    odd = os.fsencode(root) + b"/caf\xe9 \xff.jpg"
    with open(odd, "wb") as handle:
        handle.write(images.encode(images.grace_hopper()))

    try:
        summary = scan.scan(app, [str(root)], actor="test")
    finally:
        subprocess.run(["rm", "-rf", os.fsdecode(deep)], check=True)  # pytest's own clean-up would recurse too deep

    assert summary.analyzed == 3, summary.errors
    assert [e.kind for e in summary.errors] == ["unreadable"]  # the loop, reported once
    assert "loop" in summary.errors[0].location
    with app.store.transaction() as session:
        rows = session.execute(select(Sighting.location, Sighting.location_raw)).all()
    by_name = {Path(loc).name: raw for loc, raw in rows}
    assert by_name["caf\\xe9 \\xff.jpg"] == odd  # readable, and the exact bytes kept beside it
    assert by_name["face.jpg"] is None and by_name["bottom.png"] is None
    assert any(len(loc) > 5000 for loc, _ in rows)


def test_files_are_chosen_by_content_not_by_name(app: App, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    images.write(folder / "photo.dat", images.astronaut_face_crop())
    images.write(folder / "no_extension", images.grace_hopper(), "PNG")
    (folder / "README.txt").write_text("notes, not a picture\n")
    (folder / "broken.jpg").write_text("a .jpg that is not one: reported, not skipped\n")
    summary = scan.scan(app, [str(folder)], actor="test")
    assert (summary.analyzed, summary.not_media, summary.files) == (2, 1, 3)
    assert _errors(summary) == {"broken.jpg": "unsupported_format"}


def test_unreadable_folder_is_reported(tmp_path: Path) -> None:
    """Root reads any folder, so as root the walk runs as an unprivileged user in a user namespace."""
    images.write(tmp_path / "in" / "ok" / "face.jpg", images.astronaut_face_crop())
    images.write(tmp_path / "in" / "locked" / "secret.jpg", images.astronaut_face_crop())
    (tmp_path / "in" / "locked").chmod(0)
    code = (
        "import json, sys; from likeness.sources import discover, Refused; "
        "print(json.dumps([[r.location, r.error.kind] if isinstance(r, Refused) else [r.location, 'ok'] "
        "for r in discover([sys.argv[1]])]))"
    )
    prefix = ["unshare", "--user", "--map-user=1000", "--map-group=1000"] if os.geteuid() == 0 else []
    try:
        proc = subprocess.run(
            [*prefix, sys.executable, "-c", code, str(tmp_path / "in")], capture_output=True, text=True, timeout=60
        )
    finally:
        (tmp_path / "in" / "locked").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    found = {Path(loc).name: kind for loc, kind in json.loads(proc.stdout)}
    assert found == {"face.jpg": "ok", "locked": "unreadable"}


def test_a_file_removed_during_the_scan_is_an_error_of_its_own(app: App, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for n, name in enumerate(("a.jpg", "b.jpg", "c.jpg")):
        images.write(folder / name, images.resize(images.astronaut(), 0.3 + 0.1 * n))
    refs = [r for r in discover([str(folder)]) if isinstance(r, MediaRef)]
    (folder / "b.jpg").unlink()
    summary = scan.ScanSummary()
    from contextlib import ExitStack

    with ExitStack() as stack:
        run = scan.Run(app.store, app.settings, summary, stack, None, actor="test")
        for ref in refs:
            run.submit(ref)
        run.drain(0)
    assert summary.analyzed == 2
    assert [(Path(e.location).name, e.kind, e.recorded) for e in summary.errors] == [("b.jpg", "unreadable", False)]


def test_a_crawled_item_never_reads_a_local_file(app: App, tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    images.write(secret, images.astronaut_face_crop())
    summary = scan.ScanSummary()
    from contextlib import ExitStack

    with ExitStack() as stack:
        run = scan.Run(app.store, app.settings, summary, stack, None, actor="test")
        for location in (str(secret), f"file://{secret}", "ftp://example.org/x.jpg"):
            run.submit(MediaRef(location, source="test", key=location))
        run.drain(0)
    assert [e.kind for e in summary.errors] == ["unsafe_url"] * 3
    with app.store.transaction() as session:
        assert session.scalar(select(Media.id).limit(1)) is None


def test_other_url_schemes_on_the_command_line_are_refused() -> None:
    found = list(discover(["file:///etc/passwd", "ftp://example.org/a.jpg", "javascript:alert(1)"]))
    assert all(isinstance(r, Refused) and r.error.kind == "unsafe_url" for r in found)


def test_a_database_error_on_one_file_is_recorded_against_it(app: App, tmp_path: Path) -> None:
    """The database refuses one file's analysis (here a trigger does): that file is recorded, the rest stored."""
    folder = tmp_path / "in"
    images.write(folder / "a.jpg", images.astronaut_face_crop())
    images.write(folder / "odd.png", images.resize(images.grace_hopper(), 0.5), "PNG")
    width = images.resize(images.grace_hopper(), 0.5).shape[1]
    with app.store.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.width = {width} THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$"
            )
        )
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON media FOR EACH ROW EXECUTE FUNCTION refuse()"))
    summary = scan.scan(app, [str(folder)], actor="test")
    assert summary.analyzed == 1
    assert _errors(summary) == {"odd.png": "store_failed"}
    assert "refused for the test" in summary.errors[0].message and summary.errors[0].recorded
    with app.store.transaction() as session:
        assert sorted(session.scalars(select(Media.status))) == ["analyzed", "failed"]
