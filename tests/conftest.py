import os

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
