"""POST /api/v1/access-check: the gate's decision for a hypothetical device, recording nothing."""

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session

from api.models import ApiToken
from devices import actions
from devices.audit import SYSTEM
from devices.models import (
    AuditEvent,
    DeviceAccessRule,
    DeviceClass,
    DeviceStateChange,
    Mailbox,
    MailboxDeviceId,
    MobileDevice,
    OrgSettings,
)
from notifications.models import Notification
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures

URL = "/api/v1/access-check"
TABLES = (
    AuditEvent,
    DeviceAccessRule,
    DeviceClass,
    DeviceStateChange,
    Mailbox,
    MailboxDeviceId,
    MobileDevice,
    Notification,
    OrgSettings,
    Session,
    User,
)
HYPOTHETICAL = {
    "mailbox": "alice",
    "device_id": "NewPhone1",
    "device_type": "iPhone",
    "device_model": "iPhone16,1",
    "device_os": "iOS 18.0",
    "user_agent": "Apple-iPhone16C1/2201.1",
}


@pytest.fixture
def helpdesk(client_for):
    return client_for("helpdesk")


def snapshot() -> dict:
    return {
        model.__name__: sorted(map(repr, model.objects.values().order_by("pk"))) for model in TABLES
    }


def check(client, **changes) -> dict:
    response = client.post(URL, {**HYPOTHETICAL, **changes})
    assert response.status_code == 200, response.content
    return response.json()


def test_the_org_default_decides(cast, helpdesk):
    assert check(helpdesk) == {
        "mailbox": "alice",
        "access_state": "Quarantined",
        "access_state_reason": "Global",
        "rule": None,
        "explanation": "Quarantined by the organisation's default access level (Quarantine); "
        "no list entry or rule matches.",
    }


def test_a_policy_decides_and_is_named(cast, helpdesk):
    actions.create_policy(
        SYSTEM, name="Board", default_access_level="Block", domains=["example.org"]
    )
    assert Mailbox.objects.get(alias="alice").primary_smtp_address.endswith("@example.org")
    answer = check(helpdesk)
    assert (answer["access_state"], answer["access_state_reason"]) == ("Blocked", "Global")
    assert answer["explanation"] == (
        "Blocked by the access policy Board of the mailbox alice (default access level Block);"
        " no list entry or rule matches."
    )


def test_a_rule_decides_and_is_named(cast, helpdesk):
    rule = actions.create_rule(
        SYSTEM, characteristic="DeviceModel", query_string="iPhone16*", access_level="Block"
    ).obj
    decision = check(helpdesk)
    assert decision["access_state"] == "Blocked"
    assert decision["access_state_reason"] == "DeviceRule"
    assert decision["rule"] == {
        "id": rule.pk,
        "name": "iPhone16* (DeviceModel)",
        "characteristic": "DeviceModel",
        "query_string": "iPhone16*",
        "access_level": "Block",
    }
    assert 'the rule "iPhone16*" on DeviceModel' in decision["explanation"]


def test_the_mailbox_lists_and_policy_decide(cast, helpdesk):
    alice = cast["mailboxes"]["alice"]
    actions.set_mailbox(SYSTEM, alice, add_allowed=["newphone1"])
    assert check(helpdesk)["access_state_reason"] == "Individual"
    assert check(helpdesk)["access_state"] == "Allowed"
    actions.set_mailbox(SYSTEM, alice, add_blocked=["NewPhone1"])
    assert check(helpdesk)["access_state"] == "Blocked"
    actions.set_mailbox(SYSTEM, alice, activesync_enabled=False)
    decision = check(helpdesk)
    assert (decision["access_state"], decision["access_state_reason"]) == ("Blocked", "Policy")


def test_a_device_without_its_information_is_in_discovery(cast, helpdesk):
    decision = check(helpdesk, device_info_received=False, device_model="", device_os="")
    assert decision["access_state"] == "DeviceDiscovery"


@pytest.mark.parametrize("identity", ["bob", "BOB@example.org", "CONTOSO\\bob"])
def test_the_mailbox_is_named_as_the_gate_names_it(cast, helpdesk, identity):
    assert check(helpdesk, mailbox=identity)["mailbox"] == "bob"


def test_nothing_is_recorded(cast, helpdesk):
    helpdesk.get("/api/v1/me")  # the token's first use writes last_used_at
    tokens_before = list(ApiToken.objects.values())
    before = snapshot()
    check(helpdesk)
    check(helpdesk, device_info_received=False)
    check(helpdesk, mailbox="bob", device_id="BobIphone1")
    assert snapshot() == before
    assert list(ApiToken.objects.values()) == tokens_before


def test_it_writes_no_org_settings_row_either(cast, helpdesk):
    OrgSettings.objects.all().delete()
    assert check(helpdesk)["access_state"] == "Allowed"  # the model's default
    assert not OrgSettings.objects.exists()


@pytest.mark.parametrize(
    "body,field",
    [
        ({**HYPOTHETICAL, "mailbox": "nobody"}, "mailbox"),
        ({**HYPOTHETICAL, "device_id": ""}, "device_id"),
        ({**HYPOTHETICAL, "device_id": "x" * 65}, "device_id"),
        ({k: v for k, v in HYPOTHETICAL.items() if k != "mailbox"}, "mailbox"),
    ],
)
def test_bad_input_is_400(cast, helpdesk, body, field):
    response = helpdesk.post(URL, body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
