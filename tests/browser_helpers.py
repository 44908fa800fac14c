"""What the browser tests share: Debian's Chromium under Playwright, the app served in a thread, problem
watching (console errors, page errors and dialogs fail the test) and log-in."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


def need_chromium() -> None:
    """Skip with the reason when Debian's Chromium is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (Debian package chromium, see Makefile DEB_TEST)")


@contextmanager
def served(app) -> Iterator[str]:
    """Serve ``app`` with werkzeug on 127.0.0.1 (ephemeral port) in a thread; yields the base URL."""
    from werkzeug.serving import make_server

    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator[object]:
    """One headless Chromium, closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield instance
        finally:
            instance.close()


class Watch:
    """Collects console errors, page errors and dialogs of one page."""

    def __init__(self, page) -> None:
        """Attach the listeners."""
        self.problems: list[str] = []
        page.on("console", lambda msg: self.problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog) -> None:
        self.problems.append(f"dialog opened: {dialog.message}")
        dialog.dismiss()

    def check(self) -> None:
        """Fail the test if anything went wrong."""
        assert not self.problems, self.problems


@contextmanager
def watched_page(browser, **context_options) -> Iterator[object]:
    """A fresh page (own cookies, 1400x1000) whose problems fail the test when it ends."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, **context_options)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    watch = Watch(pg)
    yield pg
    context.close()
    watch.check()


def login(page, base: str, username: str = "admin", password: str = "admin-pass-2567") -> None:
    """Log in through the form and wait for the overview."""
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_url(f"{base}/")
