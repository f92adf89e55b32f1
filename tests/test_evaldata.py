"""Matching on real, labelled faces from ../shared/eval-data (skipped with a reason when it is absent).

A handful of colour-photo identities are enrolled from two photos each; their other photos, the distractors
(people in no registry) and the no-face pictures are scanned. The floors are the ones measured by
bench/vs_face_recognition.py on the whole set (precision 0.956, recall 0.945), with some room.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from likeness.services import review, scan, subjects
from likeness.services.app import App
from tests import images
from tests.conftest import EVAL_DATA, needs_eval_data

IDENTITIES = (
    "deepface-angelina",
    "deepface-p01",
    "deepface-p02",
    "fr-obama",
    "fr-alex_lacamoire",
    "faceapi-amy",
    "orl-s01",
    "yale-subject02",
)
REFS = 2

pytestmark = needs_eval_data()


def test_enrolled_people_are_found_and_strangers_never_are(app: App, tmp_path: Path) -> None:
    unknown = tmp_path / "unknown"
    truth: dict[str, str | None] = {}
    present = [i for i in IDENTITIES if (EVAL_DATA / "faces" / i).is_dir()]
    assert len(present) >= 6, f"expected identities missing from {EVAL_DATA}"
    for ident in present:
        photos = sorted((EVAL_DATA / "faces" / ident).glob("*.jpg"))
        subjects.enroll(app, ident, images.photos(photos[:REFS]), largest_face=True, actor="test")
        for photo in photos[REFS:]:
            target = unknown / ident / photo.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(photo, target)
            truth[str(target)] = ident
    for folder in ("distractors", "noface"):
        for photo in sorted((EVAL_DATA / folder).rglob("*.jpg")):
            target = unknown / folder / f"{photo.parent.name}-{photo.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(photo, target)
            truth[str(target)] = None

    scan.scan(app, [str(unknown)], actor="test")

    named = [(r.location, r.target) for r in review.list_matches(app, limit=None) if r.kind == "face"]
    strangers = [loc for loc, _ in named if truth[loc] is None]
    assert strangers == [], "a distractor or a no-face picture matched a subject"
    correct = {(loc, who) for loc, who in named if truth[loc] == who}
    positives = sum(1 for t in truth.values() if t)
    precision, recall = len(correct) / len(named), len(correct) / positives
    assert precision >= 0.9, f"precision {precision:.3f}"
    assert recall >= 0.85, f"recall {recall:.3f} ({len(correct)}/{positives})"
