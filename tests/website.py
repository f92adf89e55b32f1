"""What the web tests share: the site (API and pages) on a real uvicorn server on loopback, accounts with
passwords, a login through the page, and the system's Chromium (launched with ``executable_path``: never a
browser download), one browser per test module and a fresh context per test.

Why not pytest-playwright's fixtures: its Playwright lives for the whole session, and a sync Playwright keeps an
event loop running in the main thread, so every asyncio test after the first browser test fails ("Cannot run the
event loop while another loop is running"). Here the browser and its loop end with their module."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from likeness import accounts
from likeness.services.app import App
from likeness.web import create_site

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium; .ci/run installs it)"
)
PASSWORD = "correct horse battery staple"
_names = itertools.count()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(asgi: FastAPI) -> Iterator[str]:
    """``asgi`` on a real uvicorn server on a free loopback port, in a thread; yields its base URL."""
    port = _free_port()
    served = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not served.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    served.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def site(app: App) -> Iterator[str]:
    with serving(create_site(app)) as url:
        yield url


def account(app: App, role: str, subject_id: int | None = None) -> str:
    """A new account of ``role`` with ``PASSWORD``; its username."""
    name = f"{role}{next(_names)}"
    with app.store.transaction() as s:
        accounts.create_user(s, name, role, actor="test", password=PASSWORD, subject_id=subject_id)
    return name


def log_in(page: Page, site: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{site}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def loaded(page: Page, selector: str) -> bool:
    """Every picture matching ``selector`` loaded (a broken one has no natural width); False after 10 s."""
    script = """sel => { const els = [...document.querySelectorAll(sel)];
        return els.length > 0 && els.every(e => e.complete && e.naturalWidth > 0); }"""
    try:
        page.wait_for_function(script, arg=selector, timeout=10_000)
    except PlaywrightTimeout:
        return False
    return True
