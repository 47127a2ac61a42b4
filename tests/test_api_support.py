"""Fixtures shared by the tests/test_api_*.py modules (imported by name; no tests here).

The cast: an Organization Management admin, a Help Desk member, two end users
(alice, bob) with a mailbox each, a login with no role, and anonymous. Each
login has an API token; `client_for(role)` gives an APIClient that sends it.
The devices are recorded the way the gate records them, so their states are
the engine's.
"""

import pytest
from django.contrib.auth.models import Group, Permission, User
from rest_framework.test import APIClient

from api import tokens
from devices import actions
from devices.actions import Contact
from devices.audit import SYSTEM
from devices.permissions import HELP_DESK_GROUP, ORG_MANAGEMENT_GROUP

ROLES = ("org", "helpdesk", "alice", "bob", "norole", "anon")
STAFF = ("org", "helpdesk")


def token_client(user) -> APIClient:
    client = APIClient()
    if user is not None:
        _, key = tokens.create_token(user, "tests")
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def contact(mailbox, device_id, device_type="iPhone", model="iPhone15,2", os="iOS 17.4"):
    return actions.record_contact(
        SYSTEM,
        mailbox,
        Contact(
            device_id=device_id,
            device_type=device_type,
            user_agent=f"Apple-{model}/2104.1",
            info={"model": model, "os": os},
        ),
    )


@pytest.fixture
def cast(db, settings):
    """Logins by role name, with the Quarantine default and a few devices."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    org_group, _ = Group.objects.get_or_create(name=ORG_MANAGEMENT_GROUP)
    help_group, _ = Group.objects.get_or_create(name=HELP_DESK_GROUP)
    # As migration notifications 0002 does; again here, in case a flush removed it.
    org_group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="notifications",
            codename__in=["view_notification", "change_notification"],
        )
    )
    users = {
        "org": User.objects.create_user("olivia", "olivia@example.org", "pw"),
        "helpdesk": User.objects.create_user("henry", "henry@example.org", "pw"),
        "norole": User.objects.create_user("nora", "nora@example.org", "pw"),
    }
    users["org"].groups.add(org_group)
    users["helpdesk"].groups.add(help_group)
    alice = actions.create_mailbox(
        SYSTEM,
        alias="alice",
        email="alice@example.org",
        display_name="Alice Liddell",
        password="pw",
    ).obj
    bob = actions.create_mailbox(
        SYSTEM, alias="bob", email="bob@example.org", display_name="Bob Builder", password="pw"
    ).obj
    users["alice"], users["bob"] = alice.user, bob.user
    actions.set_org_settings(SYSTEM, default_access_level="Quarantine")
    devices = {
        "alice-iphone": contact(alice, "AliceIphone1"),
        "alice-android": contact(alice, "AliceDroid1", "Android", "Pixel 8", "Android 14"),
        "bob-iphone": contact(bob, "BobIphone1"),
    }
    return {"users": users, "mailboxes": {"alice": alice, "bob": bob}, "devices": devices}


@pytest.fixture
def client_for(cast):
    def make(role: str) -> APIClient:
        return token_client(cast["users"].get(role))

    return make
