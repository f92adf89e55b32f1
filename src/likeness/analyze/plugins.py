"""Analysers are plugins with stable names; settings choose which run and in what order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from likeness.analyze.types import Analysis
from likeness.errors import ConfigurationError
from likeness.media import Media
from likeness.settings import Settings


class Analyzer(Protocol):
    name: str

    def __call__(self, media: Media, result: Analysis) -> None: ...


Factory = Callable[[Settings], Analyzer]
_ANALYZERS: dict[str, Factory] = {}
F = TypeVar("F", bound=Factory)


def register(name: str) -> Callable[[F], F]:
    def wrap(factory: F) -> F:
        if name in _ANALYZERS:
            raise ValueError(f"analyser {name!r} registered twice")
        _ANALYZERS[name] = factory
        return factory

    return wrap


def build(settings: Settings) -> list[Analyzer]:
    check_analyzers(settings)
    return [_ANALYZERS[name](settings) for name in settings.analyzers]


def check_analyzers(settings: Settings) -> None:
    unknown = [n for n in settings.analyzers if n not in _ANALYZERS]
    if unknown:
        raise ConfigurationError(f"unknown analysers {unknown}; available: {', '.join(sorted(_ANALYZERS))}")


def available() -> list[str]:
    return sorted(_ANALYZERS)
