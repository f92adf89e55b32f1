"""The plain hash-list formats that HMA and ThreatExchange tools exchange.

- text: one PDQ hash per line, 64 hex digits (blank lines and ``#`` comments ignored);
- CSV: ``hash,quality[,id]`` per line, an optional header line naming those columns.

Every malformed line is reported with its number; nothing is imported from a file with errors.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from likeness.errors import HashListError

_HEX = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class ListedHash:
    digest: bytes
    quality: int | None
    external_id: str | None


def parse(text: str, fmt: str) -> list[ListedHash]:
    if fmt not in ("text", "csv"):
        raise HashListError(f"unknown format {fmt!r}; use text or csv")
    rows = _csv_rows(text) if fmt == "csv" else _text_rows(text)
    parsed, errors = [], []
    for number, fields in rows:
        try:
            parsed.append(_entry(fields))
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
    if errors:
        shown = "; ".join(errors[:10]) + (f"; and {len(errors) - 10} more" if len(errors) > 10 else "")
        raise HashListError(f"{len(errors)} malformed line(s), nothing imported: {shown}")
    return parsed


def _text_rows(text: str) -> list[tuple[int, list[str]]]:
    return [
        (n, [line.strip()]) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")
    ]


def _csv_rows(text: str) -> list[tuple[int, list[str]]]:
    rows = [
        (n, [f.strip() for f in r]) for n, r in enumerate(csv.reader(io.StringIO(text)), 1) if any(f.strip() for f in r)
    ]
    if rows and rows[0][1] and rows[0][1][0].lower() in ("hash", "pdq", "signal"):
        rows = rows[1:]
    return rows


def _entry(fields: list[str]) -> ListedHash:
    if not 1 <= len(fields) <= 3:
        raise ValueError(f"expected hash[,quality[,id]], got {len(fields)} fields")
    if not _HEX.fullmatch(fields[0]):
        raise ValueError(f"not a PDQ hash (64 hex digits): {fields[0][:80]!r}")
    quality = None
    if len(fields) > 1 and fields[1]:
        if not fields[1].isdigit() or not 0 <= int(fields[1]) <= 100:
            raise ValueError(f"quality must be a whole number from 0 to 100, got {fields[1][:20]!r}")
        quality = int(fields[1])
    return ListedHash(bytes.fromhex(fields[0]), quality, fields[2] if len(fields) > 2 and fields[2] else None)


def render(rows: list[tuple[bytes, int | None, str | None]], fmt: str) -> str:
    if fmt == "text":
        return "".join(f"{digest.hex()}\n" for digest, _, _ in rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["hash", "quality", "id"])
    writer.writerows([digest.hex(), "" if q is None else q, ident or ""] for digest, q, ident in rows)
    return out.getvalue()
