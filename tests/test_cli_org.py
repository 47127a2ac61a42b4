"""eas get-org-settings / set-org-settings."""

import csv
import io

import pytest
from django.core.management.base import CommandError

from devices import actions
from devices.models import (
    AccessReason,
    AccessState,
    AuditEvent,
    AuditSource,
    Mailbox,
    MobileDevice,
    OrgSettings,
)
from tests.cli_support import eas, eas_json, run_eas

ORG_KEYS = {
    "default_access_level",
    "admin_mail_recipients",
    "user_mail_insert",
    "discovery_window_minutes",
    "updated_at",
}


def org_state() -> dict:
    org = OrgSettings.objects.filter(pk=1).first()
    return actions.org_snapshot(org) if org else {}


@pytest.fixture
def allowed_device(cli_actor):
    mailbox = actions.create_mailbox(cli_actor, alias="jdoe", email="jdoe@example.org").obj
    device = MobileDevice.objects.create(
        mailbox=mailbox,
        device_id="ApplF17XK2ABCDEF",
        device_type="iPhone",
        device_info_received=True,
    )
    actions.reevaluate(MobileDevice.objects.all(), None)
    device.refresh_from_db()
    assert device.access_state == AccessState.ALLOWED
    return device


@pytest.mark.django_db
def test_it_shows_the_settings_without_creating_the_row():
    [row] = eas_json("get-org-settings")
    assert set(row) >= ORG_KEYS
    assert (
        row["default_access_level"] == OrgSettings._meta.get_field("default_access_level").default
    )
    assert row["admin_mail_recipients"] == []
    assert not OrgSettings.objects.exists()


@pytest.mark.django_db
def test_the_table_has_one_line_per_setting(cli_actor):
    actions.set_org_settings(cli_actor, admin_mail_recipients=["a@example.org", "b@example.org"])
    lines = eas("get-org-settings").splitlines()
    assert any(line.split()[:3] == ["DEFAULT", "ACCESS", "LEVEL"] for line in lines)
    recipients = next(line for line in lines if line.startswith("ADMIN MAIL RECIPIENTS"))
    assert recipients.split(None, 3)[3] == "a@example.org, b@example.org"


@pytest.mark.django_db
def test_csv_is_a_header_and_one_row(cli_actor):
    actions.set_org_settings(cli_actor, admin_mail_recipients=["a@example.org", "b@example.org"])
    rows = list(csv.DictReader(io.StringIO(eas("get-org-settings", "--format", "csv"))))
    assert len(rows) == 1
    assert set(rows[0]) >= ORG_KEYS
    assert rows[0]["admin_mail_recipients"] == "a@example.org;b@example.org"


@pytest.mark.django_db
def test_it_changes_the_settings_and_audits_the_change_as_cli():
    out = eas(
        "set-org-settings",
        "--default-access-level",
        "quarantine",
        "--admin-mail-recipients",
        "helpdesk@example.org",
        "security@example.org",
        "--user-mail-insert",
        "Call the helpdesk.",
        "--discovery-window-minutes",
        "30",
    )
    org = OrgSettings.objects.get(pk=1)
    assert org.default_access_level == "Quarantine"
    assert org.admin_mail_recipients == ["helpdesk@example.org", "security@example.org"]
    assert org.user_mail_insert == "Call the helpdesk."
    assert org.discovery_window_minutes == 30
    event = AuditEvent.objects.get(action="org_settings.update")
    assert event.source == AuditSource.CLI
    assert event.message in out
    assert "default_access_level: Allow -> Quarantine" in out


@pytest.mark.django_db
def test_it_prints_what_re_evaluation_did(allowed_device):
    out = eas("set-org-settings", "--default-access-level", "Quarantine")
    allowed_device.refresh_from_db()
    assert allowed_device.access_state == AccessState.QUARANTINED
    assert allowed_device.access_state_reason == AccessReason.GLOBAL
    event = AuditEvent.objects.filter(action="org_settings.update").latest("id")
    assert "from allowed to quarantined" in event.message
    assert out.splitlines()[0] == event.message


@pytest.mark.django_db
def test_admin_mail_recipients_replace_the_list(cli_actor):
    actions.set_org_settings(cli_actor, admin_mail_recipients=["old@example.org"])
    eas("set-org-settings", "--admin-mail-recipients", "a@example.org, b@example.org")
    assert org_state()["admin_mail_recipients"] == ["a@example.org", "b@example.org"]
    eas("set-org-settings", "--admin-mail-recipients")
    assert org_state()["admin_mail_recipients"] == []


@pytest.mark.django_db
def test_it_switches_user_mail_off(cli_actor):
    eas("set-org-settings", "--send-user-mail", "false")
    assert org_state()["send_user_mail"] is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--default-access-level", "Sometimes", "--user-mail-insert", "x"],
            "Unknown access level",
        ),
        (["--admin-mail-recipients", "helpdesk@", "ok@example.org"], "not a valid e-mail"),
        (["--discovery-window-minutes", "99999", "--user-mail-insert", "x"], "discovery window"),
        (["--send-user-mail", "yes", "--user-mail-insert", "x"], "true or false"),
        ([], "nothing to change"),
    ],
    ids=["unknown-access-level", "malformed-address", "window", "bad-boolean", "nothing"],
)
def test_it_rejects_bad_values_and_changes_nothing(cli_actor, args, message):
    actions.set_org_settings(cli_actor, admin_mail_recipients=["keep@example.org"])
    before, events = org_state(), AuditEvent.objects.count()
    with pytest.raises(CommandError, match=message):
        eas("set-org-settings", *args)
    assert org_state() == before
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_it_rejects_unknown_access_level_without_re_evaluating(allowed_device):
    with pytest.raises(CommandError, match="Unknown access level 'Sometimes'"):
        eas("set-org-settings", "--default-access-level", "Sometimes")
    allowed_device.refresh_from_db()
    assert allowed_device.access_state == AccessState.ALLOWED
    assert Mailbox.objects.count() == 1


def test_a_user_sees_one_error_line_and_a_non_zero_exit(tmp_path):
    result = run_eas(tmp_path, "set-org-settings", "--send-user-mail", "maybe")
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "eas: error: --send-user-mail takes true or false, not 'maybe'."
    ]
