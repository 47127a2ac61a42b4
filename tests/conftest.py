import os
from collections import Counter

import pytest

from devices.audit import Actor
from devices.models import AuditSource
from tests.directory_support import _fresh_gate, directory  # noqa: F401 - fixtures
from tests.ldap_support import slapd_fixture  # noqa: F401 - the fixture "slapd"
from tests.upstream_support import silent_upstream_fixture, upstream_nginx_fixture  # noqa: F401

IN_CI = os.environ.get("CI", "").lower() == "true"


def need_service(name: str, available: bool, reason: str = "") -> None:
    """Fail in CI when a service a test needs is missing; skip with a reason elsewhere."""
    if available:
        return
    message = f"{name} is not available{': ' + reason if reason else ''}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: services must be running)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On the embedded SQLite, a test database file in WAL mode instead of shared memory.

    Django's in-memory test database is one connection that a live server
    shares with all its threads (and with the test), so simultaneous requests
    (nginx's auth_request and mirror) ran on one connection at once: "database
    table is locked", 503s. With a file, every thread has its own connection,
    and the busy timeout of the settings (20 s) with IMMEDIATE transactions
    makes writers wait their turn; WAL lets readers go on meanwhile.
    synchronous=OFF: a test database need not survive a power cut.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        return
    folder = tmp_path_factory.mktemp("sqlite")
    database.setdefault("TEST", {})["NAME"] = str(folder / "test_ecp.sqlite3")
    database.setdefault("OPTIONS", {})["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF"
    )


def pytest_terminal_summary(terminalreporter):
    """One line that says why tests were skipped (need_service), instead of a list to read."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    missing = Counter()
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        missing[reason.split(" is not available", 1)[0]] += 1
    what = ", ".join(f"{name} ({n})" for name, n in missing.most_common())
    hint = "; set DATABASE_URL to run the PostgreSQL ones" if "PostgreSQL" in missing else ""
    terminalreporter.write_line(
        f"{len(skipped)} tests skipped because a service is not available: {what}{hint} "
        "(CI=true makes them fail instead)"
    )


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # The manifest storage needs collectstatic; tests render templates without it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def cli_actor():
    return Actor(source=AuditSource.CLI)


@pytest.fixture(autouse=True)
def _fresh_decision_cache():
    """No test sees a decision (or a device family touched) another test's gate requests
    left in this process."""
    from devices.actions.gate import forget_device_classes
    from devices.gate import decisions

    decisions.reset()
    forget_device_classes()
    yield
    decisions.reset()
    forget_device_classes()


@pytest.fixture
def uncached_gate(settings):
    """The gate without its decision cache (devices/gate/decisions.py): for tests of what
    an uncached request does (its one query, a dropped connection, a fresh check)."""
    settings.ECP_DECISION_CACHE_SECONDS = 0
