"""Getting bytes safely: one HTTP client behind one seam."""

from likeness.fetch.guard import check_url
from likeness.fetch.http import Fetcher, read_location

__all__ = ["Fetcher", "check_url", "read_location"]
