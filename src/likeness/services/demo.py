"""``make run``: enroll a sample subject, protect an image by hash, scan a generated corpus, report."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from likeness.cases.review import MatchRecord
from likeness.services import corpus, hashes, review, scan, subjects
from likeness.services.app import open_app
from likeness.settings import Settings


@dataclass(frozen=True)
class DemoResult:
    matches: list[MatchRecord]
    report: Path
    subject_found: int
    subject_total: int
    false_matches: list[str]
    reposts_found: int
    elapsed_s: float


ACTOR = "demo"


def run(workdir: Path, say: Callable[[str], None]) -> DemoResult:
    started = time.perf_counter()
    shutil.rmtree(workdir, ignore_errors=True)  # the demo starts from nothing each time
    made = corpus.build(workdir / "corpus")
    say(f"1. corpus of {sum(1 for p in made.scan_dir.rglob('*') if p.is_file())} files in {made.scan_dir}")
    app = open_app(Settings(home=workdir / "home"))
    try:
        photo = subjects.Photo(made.reference.name, made.reference.read_bytes())
        enrolled = subjects.enroll(app, "Eileen Collins (sample)", [photo], actor=ACTOR, force_new=True)
        say(f"2. subject {enrolled.subject_id} enrolled from {made.reference.name} (only its embedding is kept)")
        protected = subjects.Photo(made.protected.name, made.protected.read_bytes())
        added = hashes.add_files(app, "demo", [protected], actor=ACTOR)[0]
        say(f"3. protected {made.protected.name} as PDQ {added.pdq_hex} (the image itself is not stored)")
        summary = scan.scan(app, [str(made.scan_dir)], actor=ACTOR)
        say(
            f"4. scanned {summary.files} files in {summary.elapsed_s:.1f}s: {summary.faces} faces, "
            f"{summary.face_matches} face matches, {summary.hash_matches} hash matches, "
            f"{len(summary.errors)} files refused with a clear error:"
        )
        for e in summary.errors:
            say(f"   {Path(e.location).name}: {e.kind}: {e.message}")
        rows = review.list_matches(app, limit=None)
        report = workdir / "report.html"
        review.write_report(app, report)
    finally:
        app.close()
    faces = {r.location for r in rows if r.kind == "face"}
    hashed = {r.location for r in rows if r.kind == "hash"}
    return DemoResult(
        rows,
        report,
        sum(str(p) in faces for p in made.subject),
        len(made.subject),
        [p.name for p in made.others + made.no_face if str(p) in faces],
        sum(str(p) in hashed for p in made.reposts),
        time.perf_counter() - started,
    )
