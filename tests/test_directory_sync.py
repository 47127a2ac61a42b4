"""`eas sync-directory` against a real slapd: counts, disabling, safety, group policies."""

import json

import pytest
from django.core.management.base import CommandError

from devices import actions
from devices.models import AccessPolicy, AuditEvent, Mailbox, MobileDevice
from tests.cli_support import eas

pytestmark = pytest.mark.django_db(transaction=True)


def sync(*args) -> dict:
    return json.loads(eas("sync-directory", "--format", "json", *args))


def counts(result: dict) -> tuple:
    return tuple(result[k] for k in ("created", "updated", "disabled", "unchanged"))


def phone(mailbox, device_id="PHONE1"):
    from devices.audit import Actor
    from devices.models import AuditSource

    contact = actions.Contact(device_id=device_id, device_type="iPhone", user_agent="Apple-iPhone")
    return actions.record_contact(Actor(source=AuditSource.GATE), mailbox, contact)


def test_the_first_sync_creates_every_mailbox_from_the_directory(directory):
    assert counts(sync()) == (4, 0, 0, 0)  # carol is made disabled, not disabled later
    rows = {m.alias: m for m in Mailbox.objects.all()}
    assert set(rows) == {"alice", "bob", "carol", "dave"}
    assert rows["alice"].display_name == "Alice Example"
    assert rows["alice"].primary_smtp_address == "alice@example.org"
    assert rows["dave"].primary_smtp_address == "dave@example.org"  # no mail attribute
    assert rows["carol"].directory_disabled
    assert not rows["alice"].directory_disabled
    assert set(rows["bob"].directory_groups.values_list("name", flat=True)) == {
        "ecp-helpdesk",
        "sales",
    }
    event = AuditEvent.objects.get(action="directory.sync")
    assert event.after["created"] == 4


def test_counts_of_a_first_run_then_a_no_change_run(directory):
    first = sync()
    assert (first["created"], first["updated"], first["unchanged"]) == (4, 0, 0)
    again = sync()
    assert counts(again) == (0, 0, 0, 4)


def test_a_changed_entry_is_updated(directory):
    sync()
    directory.modify(directory.user_dn("alice"), "displayName", ["Alice Mayer"])
    directory.modify(directory.user_dn("alice"), "mail", ["alice.mayer@example.org"])
    result = sync()
    assert counts(result) == (0, 1, 0, 3)
    alice = Mailbox.objects.get(alias="alice")
    assert (alice.display_name, alice.primary_smtp_address) == (
        "Alice Mayer",
        "alice.mayer@example.org",
    )


def test_a_removed_user_is_disabled_and_its_devices_refused(directory):
    sync()
    alice = Mailbox.objects.get(alias="alice")
    device = phone(alice)
    assert device.access_state == "Allowed"
    directory.delete_user("alice")
    result = sync("--force")  # one of four is more than 10 %
    assert counts(result) == (0, 0, 1, 3)
    device.refresh_from_db()
    assert (device.access_state, device.access_state_reason) == ("Blocked", "AccountDisabled")
    change = device.state_changes.get(to_state="Blocked")
    assert change.event.source == "directory"
    assert change.event.action == "directory.sync"


def test_a_sync_that_would_disable_too_many_refuses_and_changes_nothing(directory):
    sync()
    for uid in ("alice", "bob"):
        directory.delete_user(uid)
    with pytest.raises(CommandError, match="would disable 2 of 3 mailboxes"):
        sync()
    assert not Mailbox.objects.filter(directory_disabled=True).exclude(alias="carol").exists()
    assert AuditEvent.objects.filter(action="directory.sync").count() == 1
    assert counts(sync("--force")) == (0, 0, 2, 2)


def test_a_re_enabled_user_syncs_again(directory):
    sync()
    directory.set_disabled("carol", False)
    assert counts(sync()) == (0, 1, 0, 3)
    assert not Mailbox.objects.get(alias="carol").directory_disabled


def test_a_dry_run_counts_and_changes_nothing(directory):
    result = sync("--dry-run")
    assert (result["created"], result["dry_run"]) == (4, True)
    assert not Mailbox.objects.exists()
    assert not AuditEvent.objects.filter(action="directory.sync").exists()


def test_an_unreachable_directory_changes_nothing(directory):
    sync()
    directory.stop()
    with pytest.raises(CommandError, match="directory unavailable.*nothing was changed"):
        sync()
    assert Mailbox.objects.filter(directory_disabled=False).count() == 3
    assert AuditEvent.objects.filter(action="directory.sync").count() == 1


def test_a_mailbox_made_by_hand_is_linked_not_doubled(directory, cli_actor):
    actions.create_mailbox(cli_actor, alias="bob", email="bob@example.org")
    actions.create_mailbox(cli_actor, alias="zed", email="zed@example.org")
    result = sync()
    assert (result["created"], result["updated"]) == (3, 1)
    assert Mailbox.objects.get(alias="bob").directory_dn == directory.user_dn("bob")
    # A mailbox the directory never had is left alone.
    zed = Mailbox.objects.get(alias="zed")
    assert (zed.directory_dn, zed.directory_disabled) == ("", False)


def test_a_group_scoped_policy_follows_membership_on_the_next_sync(directory, cli_actor):
    sales = directory.group_dn("sales")
    eas(
        "new-access-policy",
        "Sales phones",
        "--default-access-level",
        "Block",
        "--directory-group",
        sales,
    )
    sync()
    policy = AccessPolicy.objects.get()
    assert set(policy.mailboxes.values_list("alias", flat=True)) == {"bob", "dave"}
    bob = Mailbox.objects.get(alias="bob")
    device = phone(bob, "BOBPHONE")
    assert (device.access_state, device.access_state_reason) == ("Blocked", "Global")
    directory.remove_member("sales", "bob")
    directory.add_member("sales", "alice")
    result = sync()
    assert result["updated"] == 2
    assert set(policy.mailboxes.values_list("alias", flat=True)) == {"alice", "dave"}
    device.refresh_from_db()
    assert device.access_state == "Allowed"


def test_a_policy_group_must_be_a_dn(directory):
    with pytest.raises(CommandError, match="is not a directory group DN"):
        eas(
            "new-access-policy",
            "X",
            "--default-access-level",
            "Block",
            "--directory-group",
            "sales",
        )
    assert not AccessPolicy.objects.exists()


def test_sync_without_a_directory_is_a_clear_error(db, settings):
    settings.ECP_LDAP_ENABLED = False
    with pytest.raises(CommandError, match="no directory configured"):
        eas("sync-directory")


def test_the_beat_task_syncs(directory):
    from devices import tasks

    assert tasks.sync_directory()["created"] == 4
    directory.stop()
    assert tasks.sync_directory() is None  # logged, nothing changed
    assert Mailbox.objects.count() == 4


def test_sign_in_keeps_groups_for_policies(directory, cli_actor):
    from tests.directory_support import sync_request

    actions.create_policy(
        cli_actor,
        name="Helpdesk quarantine",
        default_access_level="Quarantine",
        directory_groups=[directory.group_dn("ecp-helpdesk")],
    )
    response = sync_request("bob", "bob-pw", device_id="BOBPHONE")
    assert response.status_code == 449  # in discovery: asked to provision first
    bob = Mailbox.objects.get(alias="bob")
    assert bob.access_policy.name == "Helpdesk quarantine"
    assert MobileDevice.objects.get().access_state in ("Quarantined", "DeviceDiscovery")


def test_a_disabled_account_is_explained_and_mails_nobody_per_device(directory, cli_actor):
    from devices.views import wording
    from notifications.models import Notification

    actions.set_org_settings(cli_actor, admin_mail_recipients=["helpdesk@example.org"])
    from tests.directory_support import sync_request

    sync()
    assert sync_request("alice", "alice-pw").status_code == 200  # links her login
    device = MobileDevice.objects.get(mailbox__alias="alice")
    assert device.mailbox.user is not None  # a user mail would have a recipient
    directory.set_disabled("alice")
    sync("--force")
    device.refresh_from_db()
    assert device.access_state_reason == "AccountDisabled"
    # A leaver's devices: no "your device was blocked" mail per device.
    assert not Notification.objects.filter(kind="user-blocked").exists()
    assert "disabled or was removed in the directory" in wording.explain(device)
    assert "Your account is disabled in the directory" in wording.next_steps(device)
