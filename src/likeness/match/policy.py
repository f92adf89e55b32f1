"""Confidence tiers and suppression rules. Thresholds come from settings (calibration: docs/calibration.md)."""

from __future__ import annotations

from urllib.parse import urlsplit

from likeness.settings import FaceTiers, HashSettings

TIERS = ("high", "medium", "low")


def face_tier(similarity: float, tiers: FaceTiers) -> str | None:
    """The tier of a similarity under one model's tiers (``FaceSettings.tiers(model)``)."""
    if similarity >= tiers.high:
        return "high"
    if similarity >= tiers.medium:
        return "medium"
    if similarity >= tiers.low:
        return "low"
    return None


def hash_tier(distance: int, settings: HashSettings) -> str | None:
    """PDQ: about a third of the allowed distance per tier; 0-10 is the same picture re-encoded."""
    if distance > settings.pdq_max_distance:
        return None
    if distance <= settings.pdq_max_distance // 3:
        return "high"
    return "medium" if distance <= 2 * settings.pdq_max_distance // 3 else "low"


def allowlisted(location: str, domains: list[str]) -> bool:
    """True for a URL on one of the domains (or a subdomain of one). Local paths are never allowlisted."""
    host = (urlsplit(location).hostname or "").lower().rstrip(".")
    return bool(host) and any(host == d or host.endswith("." + d) for d in (x.lower().strip(".") for x in domains))


def suppressed(locations: list[str], domains: list[str]) -> bool:
    """A match is suppressed only when every place the media was seen is allowlisted for the subject."""
    return bool(domains) and bool(locations) and all(allowlisted(loc, domains) for loc in locations)
