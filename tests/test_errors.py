"""One error tree: every kind names one class, so a stored kind always says what happened."""

from __future__ import annotations

from collections import Counter

from likeness.errors import LikenessError, error_classes


def test_error_kinds_are_unique() -> None:
    classes = error_classes()
    assert len(classes) > 20
    twice = [kind for kind, n in Counter(c.kind for c in classes).items() if n > 1]
    assert twice == []


def test_every_error_class_lives_in_the_tree_module() -> None:
    assert {c.__module__ for c in error_classes()} == {LikenessError.__module__}
