"""The task queue (likeness.worker.queue) on a test's database, with the worker runtime's app set to the test's, for
the scheduler and health tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import procrastinate

from likeness.services.app import App
from likeness.worker import runtime
from likeness.worker.queue import make_queue


@contextmanager
def open_queue(app: App) -> Iterator[procrastinate.App]:
    queue = make_queue(app.settings, app.store)
    runtime.install(app)
    try:
        with queue.open():
            yield queue
    finally:
        runtime.close()
