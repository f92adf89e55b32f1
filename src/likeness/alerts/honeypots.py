"""Honeypots: synthetic subjects (enrolled from pictures that ship in packages) whose fresh copies are planted in a
folder the pipeline scans. Each plant is new bytes, so finding it takes the whole pipeline (read, decode, detect,
embed, match), not a look-up of bytes seen before. A plant is due ``alerts.honeypot_grace_s`` after planting (at
once after a check that scanned it); a due plant without a match of its subject on its bytes is missed, and a miss
is alerted to every operator rule (never to a subject-facing one) and fails ``/health``.

Planting enrols subjects, so it lives in services/honeypots.py; this module holds what the queue and the API need.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from likeness.store import audit
from likeness.store.models import Honeypot, HoneypotPlant


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.asarray(data.astronaut())


def _grace_hopper() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return np.asarray(Image.open(path).convert("RGB"))


# Pictures that ship inside installed packages (scikit-image, matplotlib): nothing is downloaded, on any machine.
PICTURES = {"astronaut": _astronaut, "grace_hopper": _grace_hopper}


@dataclass(frozen=True)
class Missed:
    plant_id: int
    honeypot_id: int
    subject_id: int
    location: str
    planted_at: datetime
    due_at: datetime


def picture(name: str) -> bytes:
    """The honeypot's enrolment photo: the package's picture as it ships."""
    return _jpeg(PICTURES[name](), comment=b"")


def fresh_copy(name: str) -> bytes:
    """New bytes of the same face each time: slightly resized, a random comment, so its SHA-256 is unseen."""
    pixels = PICTURES[name]()
    img = Image.fromarray(pixels)
    factor = 0.8 + secrets.randbelow(150) / 1000
    img = img.resize((round(img.width * factor), round(img.height * factor)), Image.Resampling.LANCZOS)
    return _jpeg(np.asarray(img), comment=secrets.token_hex(16).encode())


def _jpeg(pixels: np.ndarray, comment: bytes) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90, comment=comment)
    return buf.getvalue()


def honeypots(session: Session) -> list[Honeypot]:
    return list(session.scalars(select(Honeypot).order_by(Honeypot.id)))


def add_honeypot(session: Session, subject_id: int, picture_name: str, *, actor: str) -> Honeypot:
    row = Honeypot(subject_id=subject_id, picture=picture_name)
    session.add(row)
    session.flush()
    details = {"subject_id": subject_id, "picture": picture_name}
    audit.record(session, "honeypot.created", "honeypot", row.id, details, actor=actor)
    return row


def record_plant(session: Session, honeypot_id: int, sha256: str, location: str, grace_s: float) -> HoneypotPlant:
    row = HoneypotPlant(
        honeypot_id=honeypot_id,
        sha256=sha256,
        location=location,
        due_at=func.now() + timedelta(seconds=grace_s),
    )
    session.add(row)
    session.flush()
    return row


def make_due(session: Session, planted_before: datetime) -> None:
    """Plants a scan has just covered are due now: the check need not wait for their grace period."""
    session.execute(
        update(HoneypotPlant)
        .where(HoneypotPlant.planted_at <= planted_before, HoneypotPlant.due_at > text("now()"))
        .values(due_at=text("now()"))
    )


# Each honeypot's newest due plant, when no match of its subject on those bytes exists: a miss stays until a later
# plant is found.
_MISSED = text(
    """
    SELECT * FROM (
      SELECT DISTINCT ON (p.honeypot_id) p.id, p.honeypot_id, h.subject_id, p.location, p.planted_at, p.due_at, p.sha256
      FROM honeypot_plants p JOIN honeypots h ON h.id = p.honeypot_id
      WHERE p.due_at <= now()
      ORDER BY p.honeypot_id, p.due_at DESC, p.id DESC
    ) newest
    WHERE NOT EXISTS (
      SELECT 1 FROM matches m JOIN media md ON md.id = m.media_id
      WHERE m.subject_id = newest.subject_id AND md.sha256 = newest.sha256
    )
    ORDER BY newest.honeypot_id
    """
)


def missed(session: Session) -> list[Missed]:
    """The honeypots the pipeline failed to find (what ``/health`` reports); empty when all is well."""
    return [Missed(*row[:6]) for row in session.execute(_MISSED)]


_ALERT = text(
    """
    INSERT INTO alert_deliveries (rule_id, plant_id, event)
    SELECT r.id, p, 'honeypot_missed' FROM alert_rules r, unnest(CAST(:plants AS integer[])) AS p
    WHERE r.subject_id IS NULL
    ON CONFLICT DO NOTHING
    """
)


def alert_missed(session: Session) -> list[Missed]:
    """Queue an alert of each missed plant to every operator rule (once per rule and plant); returns the misses."""
    found = missed(session)
    if found:
        session.execute(_ALERT, {"plants": [m.plant_id for m in found]})
    return found
