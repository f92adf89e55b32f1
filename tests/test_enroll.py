"""Enrolling many people in one command, and subjects across engines: embeddings name their model, and vectors of
the same model compare whichever engine made them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from likeness.services import scan, subjects
from likeness.services.app import App, open_app
from likeness.settings import FaceSettings, Settings
from likeness.store.models import Match, Subject, SubjectReference
from tests import images
from tests.images import photos


def _people(root: Path) -> Path:
    """face_recognition's known-people layout: one folder per person."""
    images.write(root / "Eileen Collins" / "a.jpg", images.astronaut_face_crop())
    images.write(root / "Eileen Collins" / "b.png", images.resize(images.astronaut(), 0.8), "PNG")
    images.write(root / "Grace Hopper" / "portrait.jpg", images.grace_hopper())
    images.write(root / "Grace Hopper" / "no_face.jpg", images.NO_FACE["coffee"]())  # left out, with a reason
    images.write(root / "Nobody" / "coffee.jpg", images.NO_FACE["rocket"]())
    return root


def test_import_enrolls_each_person_once_and_again_changes_nothing(app: App, tmp_path: Path) -> None:
    folder = _people(tmp_path / "people")
    first = {r.name: r for r in subjects.import_folder(app, folder, actor="test")}
    assert first["Eileen Collins"].references == 2 and first["Grace Hopper"].references == 1
    assert len(first["Grace Hopper"].refused) == 1 and "no face" in first["Grace Hopper"].refused[0]
    assert first["Nobody"].subject_id is None and first["Nobody"].refused
    again = subjects.import_folder(app, folder, actor="test")
    assert all(r.already_enrolled for r in again if r.subject_id is not None)
    with app.store.transaction() as session:
        assert session.query(Subject).count() == 2
        assert session.query(SubjectReference).count() == 3
    assert sorted(s.name for s in subjects.list_subjects(app)) == ["Eileen Collins", "Grace Hopper"]


def test_imported_subjects_match_their_copies_and_not_each_other(app: App, tmp_path: Path) -> None:
    subjects.import_folder(app, _people(tmp_path / "people"), actor="test")
    images.write(tmp_path / "scan" / "eileen.jpg", images.resize(images.astronaut(), 0.6), quality=70)
    images.write(tmp_path / "scan" / "grace.png", images.resize(images.grace_hopper(), 0.7), "PNG")
    scan.scan(app, [str(tmp_path / "scan")], actor="test")
    named = {s.id: s.name for s in subjects.list_subjects(app)}
    with app.store.transaction() as session:
        found = sorted(named[m.subject_id] for m in session.scalars(select(Match)))
    assert found == ["Eileen Collins", "Grace Hopper"]


def test_a_subject_enrolled_with_dlib_matches_faces_the_onnx_engine_found(settings: Settings, tmp_path: Path) -> None:
    reference = images.write(tmp_path / "ref.jpg", images.astronaut_face_crop())
    with open_app(settings.model_copy(update={"faces": FaceSettings(engine="dlib", detector="hog")})) as old:
        enrolled = subjects.enroll(old, "Eileen", photos([reference]), actor="test")
    images.write(tmp_path / "scan" / "copy.jpg", images.resize(images.astronaut(), 0.7))
    with open_app(settings) as new:  # the defaults: onnx engine, MTCNN
        assert new.settings.faces.engine == "onnx"
        summary = scan.scan(new, [str(tmp_path / "scan")], actor="test")
        listed = subjects.list_subjects(new)
    assert summary.face_matches == 1
    assert listed[0].id == enrolled.subject_id and listed[0].model == new.settings.faces.model


def test_tiers_belong_to_a_model() -> None:
    faces = FaceSettings(model_tiers={"other": {"low": 0.5, "medium": 0.6, "high": 0.7}})
    assert faces.tiers("other").low == 0.5
    assert faces.tiers(faces.model).low == faces.tier_low
    with pytest.raises(ValueError, match="no calibrated tiers"):
        faces.tiers("uncalibrated-model")
    assert np.isclose(FaceSettings(tier_low=0.9).tiers(faces.model).low, 0.9)
