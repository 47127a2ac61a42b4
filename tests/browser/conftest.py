"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

No browser is downloaded: `.ci/run` installs the `chromium` package when
/usr/bin/chromium is missing. One browser serves the whole session; each test
gets a fresh context (cookies) and the live server's (transactional) database.
"""

import os

# Playwright's sync API keeps an event loop in this thread; Django would refuse
# the test's own database work next to it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import importlib.util  # noqa: E402

import pytest  # noqa: E402

from tests.conftest import need_service  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1366, "height": 800}  # the issue 17 widths: 1366 px and 390 px
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser():
    need_service("chromium", os.path.exists(CHROMIUM), "apt-get install chromium")
    need_service(
        "playwright",
        importlib.util.find_spec("playwright") is not None,
        "pip install -r requirements-dev.txt",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo(live_server):
    from .demo_data import seed

    return seed()


@pytest.fixture
def new_page(browser, live_server):
    """new_page(viewport=DESKTOP, mobile=False) -> a page in a fresh context, against the
    live server."""
    contexts, violations = [], []

    def make(viewport=DESKTOP, *, mobile=False):
        # mobile: a phone's browser (honours <meta name=viewport>, touch), not a narrow window.
        extra = {"is_mobile": True, "has_touch": True, "device_scale_factor": 3} if mobile else {}
        context = browser.new_context(viewport=viewport, base_url=live_server.url, **extra)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        return page

    yield make
    for context in contexts:
        context.close()
    assert violations == [], "the pages must work under the Content-Security-Policy"


def sign_in(page, username, password):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
