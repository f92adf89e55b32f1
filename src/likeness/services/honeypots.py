"""Planting honeypots and checking the pipeline found them (alerts/honeypots.py says why and what a miss is).

``plant`` enrols one synthetic subject per packaged picture (once) and writes a fresh copy of each into the
honeypot folder (``alerts.honeypot_dir``, default LIKENESS_HOME/honeypots), a local source this module owns.
``check`` scans that folder through the ordinary scan (the same read, analysis, commit and match as any scan),
makes what it covered due, alerts every miss and sends what is due.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from likeness.alerts import deliver
from likeness.alerts import honeypots as pots
from likeness.services import scan, subjects
from likeness.services.app import App


@dataclass(frozen=True)
class Planted:
    honeypot_id: int
    subject_id: int
    picture: str
    plant_id: int
    location: str


@dataclass(frozen=True)
class Checked:
    scanned: int  # files the check's scan saw (0: no scan)
    missed: list[pots.Missed]


def folder(app: App) -> Path:
    return app.settings.alerts.honeypot_dir or app.settings.home / "honeypots"


def plant(app: App, *, actor: str) -> list[Planted]:
    """A fresh copy of every honeypot's picture in the honeypot folder (the honeypots enrolled first, once)."""
    target = folder(app)
    target.mkdir(parents=True, exist_ok=True)
    return [
        _plant_one(app, target, honeypot_id, subject_id, name, actor)
        for honeypot_id, subject_id, name in _ensure(app, actor)
    ]


def _ensure(app: App, actor: str) -> list[tuple[int, int, str]]:
    with app.store.transaction() as session:
        known = {h.picture: (h.id, h.subject_id) for h in pots.honeypots(session)}
    made = []
    for name in pots.PICTURES:
        if name not in known:
            photo = subjects.Photo(f"{name}.jpg", pots.picture(name))
            enrolled = subjects.enroll(app, f"honeypot {name}", [photo], actor=actor, force_new=True)
            with app.store.transaction() as session:
                known[name] = (
                    pots.add_honeypot(session, enrolled.subject_id, name, actor=actor).id,
                    enrolled.subject_id,
                )
        made.append((*known[name], name))
    return made


def _plant_one(app: App, target: Path, honeypot_id: int, subject_id: int, name: str, actor: str) -> Planted:
    del actor  # a plant is the check's own bookkeeping, not a change to subjects or matches
    data = pots.fresh_copy(name)
    digest = hashlib.sha256(data).hexdigest()
    path = target / f"{name}-{digest[:16]}.jpg"
    path.write_bytes(data)
    with app.store.transaction() as session:
        row = pots.record_plant(session, honeypot_id, digest, str(path), app.settings.alerts.honeypot_grace_s)
        return Planted(honeypot_id, subject_id, name, row.id, str(path))


def check(app: App, *, actor: str, scan_folder: bool = True) -> Checked:
    """Scan the honeypot folder (unless told not to: then only plants past their grace count), alert the misses,
    send what is due."""
    scanned = 0
    with app.store.transaction() as session:
        started = session.scalar(select(func.now()))
    if scan_folder and folder(app).is_dir():
        scanned = scan.scan(app, [str(folder(app))], actor=actor).files
    with app.store.transaction() as session:
        if scanned and started is not None:
            pots.make_due(session, started)
        missed = pots.alert_missed(session)
    deliver.send_due(app.store, app.settings)
    return Checked(scanned, missed)


def missed(app: App) -> list[pots.Missed]:
    """The honeypots the pipeline failed to find (what ``/health`` reports)."""
    with app.store.transaction() as session:
        return pots.missed(session)
