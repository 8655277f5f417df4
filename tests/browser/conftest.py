from __future__ import annotations

import os
import shutil

import pytest

# Playwright's sync API keeps an event loop running in this thread; the ORM calls the tests
# make between browser steps are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


# Module scope: Playwright's sync API keeps an event loop running while it is open, which the
# asyncio tests (websockets) of other modules cannot share.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    assert os.path.exists(executable), "Chromium is missing: scripts/bootstrap --test installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def logged_in_page(browser, live_server, client):
    """A browser page carrying the session of whoever `client` was logged in as."""

    def open_as(user):
        client.force_login(user)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        host = live_server.url.split("//", 1)[1].split(":")[0]
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "domain": host,
                    "path": "/",
                }
            ]
        )
        return context.new_page()

    return open_as
