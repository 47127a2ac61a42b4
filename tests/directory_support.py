"""Settings for a test against a real slapd (tests/ldap_support.py): LDAP on, as
ecp.settings turns it on when AUTH_LDAP_SERVER_URI is set."""

import base64

import pytest
from django.core.cache import cache
from django.test import Client

from devices import evaluation
from ecp.ldap_config import ldap_settings

GATE = "/Microsoft-Server-ActiveSync"
BACKEND = "devices.directory.backend.DirectoryBackend"


def use_directory(settings, slapd, *, gate: str = "ldap", **extra) -> None:
    env = {
        **slapd.env(),
        "ECP_LDAP_ADMIN_GROUP": slapd.group_dn("ecp-admins"),
        "ECP_LDAP_HELPDESK_GROUP": slapd.group_dn("ecp-helpdesk"),
        "ECP_LDAP_TIMEOUT": "2",
        **extra,
    }
    for name, value in ldap_settings(env).items():
        setattr(settings, name, value)
    settings.ECP_LDAP_ENABLED = True
    settings.ECP_GATE_CREDENTIALS = gate
    backends = [b for b in settings.AUTHENTICATION_BACKENDS if b != BACKEND]
    settings.AUTHENTICATION_BACKENDS = [backends[0], BACKEND, *backends[1:]]


@pytest.fixture
def directory(slapd, settings, db):
    """LDAP on against the default tree; the gate binds as the device's user."""
    use_directory(settings, slapd)
    return slapd


@pytest.fixture
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None
    yield
    cache.clear()


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def sync_request(
    login: str,
    password: str,
    *,
    device_id: str = "PHONE1",
    cmd: str = "FolderSync",
    user: str | None = None,
    addr: str = "127.0.0.1",
    user_agent: str = "Apple-iPhone14C2/2104.61",
    version: str = "12.0",  # a denial is a plain 403 before 12.1 (docs/PHONE_ANSWERS.md)
):
    query = f"Cmd={cmd}&DeviceId={device_id}&DeviceType=iPhone"
    if user is not None:
        query += f"&User={user}"
    return Client(REMOTE_ADDR=addr).post(
        f"{GATE}?{query}",
        data=b"",
        content_type="application/vnd.ms-sync.wbxml",
        HTTP_AUTHORIZATION=basic(login, password),
        HTTP_MS_ASPROTOCOLVERSION=version,
        HTTP_USER_AGENT=user_agent,
    )
