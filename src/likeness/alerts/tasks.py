"""The alerts' queue tasks (procrastinate), added to the queue by worker/queue.py's ``make_queue``: sending what is
due (a minute's cron, and deferred by whoever wants it sooner), and the honeypot check (hourly). Each is the same
function ``likeness alerts send`` and ``likeness honeypot check --no-scan`` call, so nothing needs a worker.
``queueing_lock``: however often they are deferred, one of each waits in the queue at a time."""

from __future__ import annotations

from functools import lru_cache

import procrastinate

from likeness.alerts import deliver, honeypots
from likeness.settings import AlertSettings, Settings, get_settings
from likeness.store import Store, open_store

blueprint = procrastinate.Blueprint()
_CRON = AlertSettings()  # crons are fixed when the blueprint is built: the settings' defaults


_given: list[tuple[Settings, Store]] = []


def use(settings: Settings, store: Store) -> None:
    """The worker's own settings and store (worker/runtime.py may hand them over; otherwise one is opened here)."""
    _given[:] = [(settings, store)]


def release() -> None:
    """Forget what ``use`` handed over (the worker is stopping; tests)."""
    _given.clear()


def _wired() -> tuple[Settings, Store]:
    return _given[0] if _given else _opened()


@lru_cache(maxsize=1)
def _opened() -> tuple[Settings, Store]:
    settings = get_settings()
    return settings, open_store(settings)


@blueprint.task(name="likeness.alerts.send", queue="io", queueing_lock="likeness.alerts.send")
def send() -> int:
    """Send every rule's due deliveries (webhooks now, email digests when their window allows)."""
    settings, store = _wired()
    return deliver.send_due(store, settings).sent


@blueprint.periodic(cron=_CRON.send_cron, periodic_id="alerts-send")
@blueprint.task(name="likeness.alerts.send_periodic", queue="io", queueing_lock="likeness.alerts.send_periodic")
def send_periodic(timestamp: int) -> int:
    """The digest tick: what ``send`` does, once a slot whatever the number of workers."""
    del timestamp
    return send()


@blueprint.periodic(cron=_CRON.honeypot_cron, periodic_id="honeypot-check")
@blueprint.task(name="likeness.alerts.honeypot_check", queue="io", queueing_lock="likeness.alerts.honeypot_check")
def honeypot_check(timestamp: int) -> int:
    """Alert the honeypots whose plants are due and not found, then send; returns how many were missed."""
    del timestamp
    settings, store = _wired()
    with store.transaction() as session:
        missed = honeypots.alert_missed(session)
    deliver.send_due(store, settings)
    return len(missed)
