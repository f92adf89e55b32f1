"""Roles and the scopes each may hold. A token carries scopes chosen at creation, never more than its account's
role allows; what a request may do is the token's scopes narrowed again by the role it has now (a reviewer made a
subject keeps no reviewer scope in old tokens).

A subject account is further bound to its own subject by the API (what it sees is filtered to that subject, and
it may change only that subject); the scopes say which kinds of request it may make at all."""

from __future__ import annotations

from likeness.errors import InvalidInput

ROLES = ("admin", "reviewer", "subject")

SCOPES: dict[str, str] = {
    "check": "analyse an uploaded picture or video and see its matches (POST /v1/check, /v1/batch)",
    "hashes:read": "look PDQ hashes up in the banks, read a protected hash",
    "hashes:write": "protect hashes, withdraw them",
    "subjects:read": "list and read subjects",
    "subjects:write": "add reference photos, withdraw a subject",
    "subjects:enroll": "enroll new subjects",
    "matches:read": "list and read matches and media",
    "matches:review": "set a match's review status, with a note",
    "scan": "scan URLs",
    "crawls:read": "see crawl status",
    "crawls:write": "start crawls",
    "stats": "read the counts",
    "tokens": "list, create and revoke the account's own tokens",
}

_REVIEWER = {
    "check",
    "hashes:read",
    "hashes:write",
    "subjects:read",
    "matches:read",
    "matches:review",
    "scan",
    "crawls:read",
    "stats",
    "tokens",
}
# A subject sees and changes only itself: its matches and media, its references, its withdrawal.
_SUBJECT = {"check", "subjects:read", "subjects:write", "matches:read", "tokens"}

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset(SCOPES),
    "reviewer": frozenset(_REVIEWER),
    "subject": frozenset(_SUBJECT),
}


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    return role


def granted(role: str, asked: list[str] | None) -> list[str]:
    """The scopes a new token of ``role`` gets: all the role allows when none are asked for."""
    allowed = ROLE_SCOPES[check_role(role)]
    if asked is None:
        return sorted(allowed)
    unknown = sorted(set(asked) - set(SCOPES))
    if unknown:
        raise InvalidInput(f"unknown scope(s): {', '.join(unknown)}")
    beyond = sorted(set(asked) - allowed)
    if beyond:
        raise InvalidInput(f"a {role} account cannot hold scope(s): {', '.join(beyond)}")
    return sorted(set(asked))
