"""Getting bytes safely: one HTTP client behind one seam, and the SSRF guard every URL passes."""

from likeness.fetch.guard import Guard, StaticResolver, check_url, redact
from likeness.fetch.http import Fetcher

__all__ = ["Fetcher", "Guard", "StaticResolver", "check_url", "redact"]
