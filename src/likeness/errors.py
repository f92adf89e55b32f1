"""The one error tree. Every error carries a stable ``kind`` (stored with the file or item it concerns, shown to
people, mapped once by each shell) and a message for people.

    LikenessError
     ├── InvalidInput          the caller asked for something malformed or impossible (CLI exit 2, HTTP 400/422)
     │    ├── EnrollmentError, HashListError, VpdqFormatError, UnsafeUrl (scheme, credentials)
     ├── NotFound              (HTTP 404)
     ├── Conflict              the request clashes with what is stored (HTTP 409)
     │    ├── PossibleDuplicate (enrolling someone who may be enrolled: ``candidates``)
     ├── Forbidden             (HTTP 403)
     ├── RateLimited           (HTTP 429)
     ├── Unauthenticated       no credentials, or credentials that are wrong, expired or revoked (HTTP 401)
     │    ├── LoginNeeded (a web page without a session: a redirect to the login)
     ├── ConfigurationError    settings, keys or the environment are wrong: caught at start (CLI exit 3, HTTP 500)
     │    ├── EmbeddedServerFailed (the embedded PostgreSQL would not initialise or start)
     ├── MediaError            the bytes cannot become pixels we are willing to analyse (recorded against the file)
     │    ├── EmptyFile, UnsupportedFormat, CorruptMedia, TooLarge, TooManyFrames, TooCostly, NotRegularFile
     ├── Unreadable            the OS refused a file or folder (permissions, vanished, link loop)
     ├── AnalysisFailed        an analyser failed on this file (a bug or a model failing on odd pixels)
     ├── StoreFailed           the database refused what analysis produced for one file
     └── FetchError            getting bytes failed
          ├── BlockedAddress (SSRF guard), TransientFetchError, CircuitOpen, RobotsDisallowed, DnsFailure,
          ├── MalformedPayload, Throttled
"""

from __future__ import annotations


class LikenessError(Exception):
    kind = "error"


class InvalidInput(LikenessError):
    kind = "invalid_input"


class NotFound(LikenessError):
    kind = "not_found"


class Conflict(LikenessError):
    kind = "conflict"


class PossibleDuplicate(Conflict):
    """Enrolling someone who may be enrolled already (the same name, or a face like an enrolled subject's):
    ``candidates`` are those subjects' ids. Enrol again adding to one of them, or forcing a new subject."""

    kind = "possible_duplicate"

    def __init__(self, message: str, candidates: list[int]) -> None:
        super().__init__(message)
        self.candidates = candidates


class Forbidden(LikenessError):
    kind = "forbidden"


class RateLimited(LikenessError):
    """Too many requests: ``retry_after`` seconds until the caller may try again (HTTP Retry-After)."""

    kind = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthenticated(LikenessError):
    """No credentials, or credentials that are wrong, expired, revoked or of a disabled account (HTTP 401)."""

    kind = "unauthenticated"


class LoginNeeded(Unauthenticated):
    """A web page asked for without a session, or with one that ended: answered with a redirect to the login."""

    kind = "login_needed"


class ConfigurationError(LikenessError):
    kind = "configuration"


class EmbeddedServerFailed(ConfigurationError):
    """The embedded PostgreSQL would not initialise or start (its log says why)."""

    kind = "embedded_database"


class EnrollmentError(InvalidInput):
    kind = "enrollment"


class HashListError(InvalidInput):
    kind = "hash_list"


class VpdqFormatError(InvalidInput):
    kind = "vpdq_format"


class MediaError(LikenessError):
    """The bytes cannot be turned into pixels we are willing to analyse."""

    kind = "media"


class EmptyFile(MediaError):
    kind = "empty"


class UnsupportedFormat(MediaError):
    kind = "unsupported_format"


class CorruptMedia(MediaError):
    kind = "corrupt"


class TooLarge(MediaError):
    kind = "too_large"


class TooManyFrames(MediaError):
    kind = "too_many_frames"


class TooCostly(MediaError):
    """Analysis of one file went over its wall-time or memory budget (enforced from outside the worker)."""

    kind = "too_costly"


class NotRegularFile(MediaError):
    """A device, FIFO, socket or a link to one: never opened for reading."""

    kind = "not_regular_file"


class Unreadable(LikenessError):
    """The operating system refused a file or folder (permissions, vanished, name too long, a link loop)."""

    kind = "unreadable"


class AnalysisFailed(LikenessError):
    kind = "analysis_failed"


class StoreFailed(LikenessError):
    kind = "store_failed"


class EvidenceAltered(LikenessError):
    """Frozen evidence that no longer matches what was recorded: a blob, a bundle or its signature."""

    kind = "evidence_altered"


class FetchError(LikenessError):
    kind = "fetch"


class UnsafeUrl(InvalidInput):
    """Not something we fetch: another scheme than http(s), credentials in the URL, no host."""

    kind = "unsafe_url"


class BlockedAddress(FetchError):
    """A URL points at a private, loopback, link-local or otherwise non-public address (SSRF guard)."""

    kind = "blocked_address"


class DnsFailure(FetchError):
    kind = "dns"


class TransientFetchError(FetchError):
    """Worth retrying: a 5xx, 429 or a dropped connection."""

    kind = "transient"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CircuitOpen(FetchError):
    kind = "circuit_open"


class RobotsDisallowed(FetchError):
    kind = "robots"


class MalformedPayload(FetchError):
    """A platform answered with something that breaks its documented contract."""

    kind = "malformed_payload"


class Throttled(FetchError):
    """A platform said "too many requests" in a 200 body (Reddit does): retry the page after ``retry_after``."""

    kind = "throttled"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def error_classes() -> list[type[LikenessError]]:
    """Every error class of the tree (a test holds their kinds unique)."""
    found: list[type[LikenessError]] = []
    stack: list[type[LikenessError]] = [LikenessError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return found
