"""Enrollment rules, the centroid, and personal data encrypted at rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from likeness.errors import EnrollmentError
from likeness.registry.subjects import centroid
from likeness.services import subjects
from likeness.services.app import App
from tests import images
from tests.images import photos


def test_photo_without_a_face_is_refused(app: App, tmp_path: Path) -> None:
    photo = images.write(tmp_path / "coffee.jpg", images.NO_FACE["coffee"]())
    with pytest.raises(EnrollmentError, match="no face found"):
        subjects.enroll(app, "X", photos([photo]), actor="test")


def test_photo_with_several_faces_needs_largest_face(app: App, tmp_path: Path) -> None:
    group = np.concatenate([images.astronaut_face_crop(), images.resize(images.grace_hopper(), 0.45)[:260, :230]], 1)
    photo = images.write(tmp_path / "two.jpg", group)
    with pytest.raises(EnrollmentError, match=r"2 faces found.*the largest face"):
        subjects.enroll(app, "X", photos([photo]), actor="test")
    assert subjects.enroll(app, "X", photos([photo]), largest_face=True, actor="test").references == 1


def test_name_is_encrypted_at_rest_and_reference_photos_are_not_stored(app: App, tmp_path: Path) -> None:
    photo = images.write(tmp_path / "ref.jpg", images.astronaut_face_crop())
    subjects.enroll(app, "Eileen Marie Collins", photos([photo]), actor="test")
    with app.store.engine.connect() as conn:
        raw = conn.execute(text("SELECT name_enc FROM subjects")).scalar_one()
        dump = " ".join(str(r) for r in conn.execute(text("SELECT * FROM subjects")).all())
        crop = conn.execute(text("SELECT crop_enc FROM subject_references")).scalar_one()
        key_id = conn.execute(text("SELECT key_id FROM subjects")).scalar_one()
    assert b"Eileen" not in bytes(raw) and "Eileen" not in dump
    assert not bytes(crop).startswith(b"\xff\xd8")  # the kept face crop is sealed too, with the subject's own key
    key = app.store.box.key(key_id)
    assert key is not None and key.open(bytes(crop)).startswith(b"\xff\xd8")
    assert subjects.list_subjects(app)[0].name == "Eileen Marie Collins"
    assert photo.read_bytes()  # the operator's file is theirs: we neither copy nor delete it


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_centroid_rejects_an_outlier_reference_once_there_are_three() -> None:
    rng = np.random.default_rng(7)
    person = _unit(rng.normal(size=128))
    same = [_unit(person + 0.15 * _unit(rng.normal(size=128))) for _ in range(3)]
    stranger = _unit(rng.normal(size=128))
    refs = np.stack([*same, stranger]).astype(np.float32)
    center, outliers = centroid(refs, np.ones(4, np.float32), outlier_below=0.9, min_refs=3)
    assert outliers.tolist() == [False, False, False, True]
    assert float(center @ person) > 0.98
    _, two = centroid(refs[[0, 3]], np.ones(2, np.float32), outlier_below=0.9, min_refs=3)
    assert not two.any()  # too few references to tell who is the outlier


def test_centroid_weights_by_quality() -> None:
    a, b = np.eye(128, dtype=np.float32)[0], np.eye(128, dtype=np.float32)[1]
    center, _ = centroid(np.stack([a, b]), np.array([3.0, 1.0], np.float32), outlier_below=0.9, min_refs=3)
    assert center[0] > center[1] > 0
