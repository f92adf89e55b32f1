"""A face is one person: it names the subjects nearly as like it as its best one, not look-alikes well below."""

from __future__ import annotations

import numpy as np

from likeness.match.faces import SubjectIndex, hits
from likeness.settings import DLIB_MODEL, FaceSettings


def _unit(*parts: float) -> np.ndarray:
    vector = np.zeros(128, np.float32)
    vector[: len(parts)] = parts
    return vector / np.linalg.norm(vector)


def _at(similarity: float, towards: np.ndarray, away: np.ndarray) -> np.ndarray:
    """A unit vector at ``similarity`` to ``towards``, turned in the plane of ``towards`` and ``away``."""
    side = away - towards * float(away @ towards)
    side /= np.linalg.norm(side)
    return (towards * similarity + side * np.sqrt(1 - similarity**2)).astype(np.float32)


def test_a_face_names_its_best_subject_and_those_within_the_margin_only() -> None:
    a, b, c = _unit(1), _unit(0.93, 0.37), _unit(0, 0, 1)  # b is a look-alike of a: cosine 0.93
    index = SubjectIndex(DLIB_MODEL, 0, np.stack([a, b, c]), np.array([1, 2, 3]), {1: [], 2: [], 3: []})
    settings = FaceSettings()
    clearly_a = _at(0.995, a, b)  # like b too (above the low tier) but far less than like a
    between = _at(0.9826, a, b)  # nearly as like b as a
    assert float(clearly_a @ b) >= settings.tier_low and float(clearly_a @ a) - float(clearly_a @ b) > 0.02
    named = {(h.face_idx, h.subject_id) for h in hits(index, [clearly_a, between], settings)}
    assert (0, 1) in named and (0, 2) not in named
    assert {(1, 1), (1, 2)} <= named
    assert not any(subject == 3 for _, subject in named)
    everyone = {(h.face_idx, h.subject_id) for h in hits(index, [clearly_a], FaceSettings(runner_up_margin=1.0))}
    assert everyone == {(0, 1), (0, 2)}  # without the margin, the look-alike would be named
