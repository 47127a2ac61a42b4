"""Check-then-act races in devices.actions, with real threads on PostgreSQL.

An action that checks something about other rows ("is another device of this
mailbox approved?", "is this DeviceId still on the list?") and then acts on
it must hold a row lock across the check and the act; otherwise simultaneous
requests each pass the check. These need concurrent transactions: PostgreSQL.
"""

import pytest
from django.db import connection
from django.test import Client

from devices import actions
from devices.audit import Actor
from devices.models import AccessState, AuditEvent, AuditSource, MobileDevice
from notifications.models import Kind, Notification
from tests.conftest import need_service
from tests.threads_support import all_at_once

ADMIN = Actor(source=AuditSource.CLI)
GATE = Actor(source=AuditSource.GATE)
DEVICES = 4


@pytest.fixture
def postgres(transactional_db, settings):
    need_service(
        "PostgreSQL",
        connection.vendor == "postgresql",
        "races need row locks and concurrent transactions (set DATABASE_URL)",
    )
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def quarantined_devices(alias: str) -> tuple:
    mailbox = actions.create_mailbox(
        ADMIN, alias=alias, email=f"{alias}@example.org", password="pw"
    ).obj
    devices = [
        actions.record_contact(
            GATE,
            mailbox,
            actions.Contact(
                device_id=f"{alias.upper()}DEV{i}", device_type="iPhone", info={"model": "X1"}
            ),
        )
        for i in range(DEVICES)
    ]
    assert {d.access_state for d in devices} == {AccessState.QUARANTINED}
    return mailbox, devices


@pytest.mark.integration
@pytest.mark.parametrize("alias", ["amy", "bo", "cy"])
def test_simultaneous_self_approvals_allow_the_first_device_only(postgres, alias):
    """Four owners' POSTs for four quarantined devices at once: exactly one is Allowed."""
    actions.set_org_settings(
        ADMIN,
        default_access_level="Quarantine",
        admin_mail_recipients=["helpdesk@example.org"],
        self_approval="first",
    )
    mailbox, devices = quarantined_devices(alias)
    clients = []
    for _ in devices:
        client = Client()
        client.force_login(mailbox.user)
        clients.append(client)

    responses = all_at_once(
        lambda i: clients[i].post(f"/my/devices/{devices[i].pk}/approve"), DEVICES
    )

    assert [r.status_code for r in responses] == [302] * DEVICES
    states = list(
        MobileDevice.objects.filter(mailbox=mailbox).values_list("access_state", flat=True)
    )
    assert states.count(AccessState.ALLOWED) == 1, states
    assert states.count(AccessState.QUARANTINED) == DEVICES - 1, states
    assert mailbox.device_ids.count() == 1
    assert AuditEvent.objects.filter(action="device.self_approve").count() == 1
    assert Notification.objects.filter(kind=Kind.ADMIN_SELF_APPROVED).count() == 1


@pytest.mark.integration
def test_simultaneous_removals_of_an_org_device_id_audit_one(postgres):
    """Of four removals of one organisation-wide DeviceId at once, one removes, three are told."""
    actions.add_org_device_id(ADMIN, "LOANER1")

    def remove(_):
        try:
            actions.remove_org_device_id(ADMIN, "LOANER1")
        except actions.ActionError as exc:
            return str(exc)
        return "removed"

    outcomes = all_at_once(remove, DEVICES)

    assert sorted(outcomes) == ["DeviceId LOANER1 is not on the organisation-wide list."] * (
        DEVICES - 1
    ) + ["removed"]
    assert AuditEvent.objects.filter(action="org_device_id.remove").count() == 1


def outcomes_of(action, count=DEVICES) -> list[str]:
    """What each of `count` simultaneous calls did: 'done', or its error's class and message."""

    def run(i):
        try:
            action(i)
        except Exception as exc:  # noqa: BLE001 - compared below
            return f"{type(exc).__name__}: {exc}"
        return "done"

    return sorted(all_at_once(run, count))


@pytest.mark.integration
def test_simultaneous_new_mailboxes_with_one_alias_make_one(postgres):
    """The losers are told it exists (409 in the API), not an IntegrityError (a 500)."""
    outcomes = outcomes_of(
        lambda i: actions.create_mailbox(
            ADMIN, alias="dana" if i % 2 else "DANA", email=f"dana{i}@example.org", password="pw"
        )
    )
    assert outcomes.count("done") == 1, outcomes
    assert all(o.startswith("ConflictError: ") for o in outcomes if o != "done"), outcomes
    assert AuditEvent.objects.filter(action="mailbox.create").count() == 1


@pytest.mark.integration
def test_simultaneous_additions_of_an_org_device_id_add_one(postgres):
    outcomes = outcomes_of(lambda i: actions.add_org_device_id(ADMIN, "LOANER2"))
    assert outcomes == ["ConflictError: DeviceId LOANER2 is already allowed organisation-wide."] * (
        DEVICES - 1
    ) + ["done"]
    assert AuditEvent.objects.filter(action="org_device_id.add").count() == 1
