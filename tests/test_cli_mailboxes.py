"""eas new-mailbox / get-mailbox / set-mailbox."""

import csv
import io
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from devices import actions
from devices.models import (
    AccessReason,
    AccessState,
    AuditEvent,
    AuditSource,
    DeviceIdList,
    Mailbox,
    MailboxDeviceId,
    MobileDevice,
)
from tests.cli_support import eas, eas_json, run_eas

MAILBOX_KEYS = [
    "alias",
    "primary_smtp_address",
    "display_name",
    "activesync_enabled",
    "allowed_device_ids",
    "blocked_device_ids",
    "device_count",
    "has_login",
    "access_policy",
    "access_policy_pinned",
    "language",  # the admin's (set-mailbox --language); "" when not set
    "mail_language",  # what its mails and phone notice use (devices.languages)
]


def listed(mailbox, kind) -> list[str]:
    return sorted(
        MailboxDeviceId.objects.filter(mailbox=mailbox, list=kind).values_list(
            "device_id", flat=True
        )
    )


def counts() -> tuple:
    User = get_user_model()
    return (
        Mailbox.objects.count(),
        User.objects.count(),
        MailboxDeviceId.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def jdoe(cli_actor):
    mailbox = actions.create_mailbox(
        cli_actor, alias="jdoe", email="jdoe@example.org", display_name="Jane Doe"
    ).obj
    MobileDevice.objects.create(
        mailbox=mailbox,
        device_id="ApplF17XK2ABCDEF",
        device_type="iPhone",
        device_info_received=True,
    )
    actions.reevaluate(MobileDevice.objects.all(), None)
    return mailbox


@pytest.mark.django_db
def test_it_creates_a_mailbox_with_its_owner_login():
    out = eas(
        "new-mailbox",
        "jdoe",
        "--email",
        "jdoe@example.org",
        "--display-name",
        "Jane Doe",
        "--password",
        "S3cret-phone-pass",
    )
    mailbox = Mailbox.objects.get(alias="jdoe")
    assert mailbox.primary_smtp_address == "jdoe@example.org"
    assert mailbox.display_name == "Jane Doe"
    assert mailbox.user.username == "jdoe"
    assert mailbox.user.check_password("S3cret-phone-pass")
    event = AuditEvent.objects.get(action="mailbox.create")
    assert event.source == AuditSource.CLI
    assert out.strip() == event.message


@pytest.mark.django_db
def test_it_reads_the_password_from_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("from-stdin\n"))
    eas("new-mailbox", "jdoe", "--email", "jdoe@example.org", "--password", "-")
    assert Mailbox.objects.get(alias="jdoe").user.check_password("from-stdin")


@pytest.mark.django_db
def test_without_a_password_there_is_no_login():
    eas("new-mailbox", "jdoe", "--email", "jdoe@example.org")
    mailbox = Mailbox.objects.get(alias="jdoe")
    assert mailbox.user is None
    assert mailbox.display_name == "jdoe"
    [row] = eas_json("get-mailbox", "jdoe")
    assert row["has_login"] is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["jdoe", "--email", "jdoe@"], "not a valid e-mail"),
        (["JDOE", "--email", "other@example.org"], "already exists"),
        (["other", "--email", "JDOE@example.org"], "already exists"),
        (["bad alias", "--email", "b@example.org"], "not a valid alias"),
    ],
    ids=["malformed-address", "duplicate-alias", "duplicate-address", "bad-alias"],
)
def test_it_rejects_bad_new_mailboxes_and_changes_nothing(jdoe, args, message):
    before = counts()
    with pytest.raises(CommandError, match=message):
        eas("new-mailbox", *args, "--password", "pw")
    assert counts() == before


@pytest.mark.django_db
def test_it_lists_mailboxes_with_the_contract_keys(jdoe, cli_actor):
    actions.create_mailbox(cli_actor, alias="zed", email="zed@example.org", password="pw")
    actions.block_device(cli_actor, jdoe, "OLDPHONE1")
    rows = eas_json("get-mailbox")
    assert [list(row) for row in rows] == [MAILBOX_KEYS, MAILBOX_KEYS]
    by_alias = {row["alias"]: row for row in rows}
    assert set(by_alias) == set(Mailbox.objects.values_list("alias", flat=True))
    assert by_alias["jdoe"]["device_count"] == MobileDevice.objects.filter(mailbox=jdoe).count()
    assert by_alias["jdoe"]["blocked_device_ids"] == listed(jdoe, DeviceIdList.BLOCKED)
    assert by_alias["jdoe"]["has_login"] is False
    assert by_alias["zed"]["has_login"] is True
    assert by_alias["zed"]["device_count"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize("identity", ["jdoe", "JDoe", "jdoe@example.org", "CONTOSO\\jdoe"])
def test_it_finds_one_mailbox_by_any_identity(jdoe, identity):
    [row] = eas_json("get-mailbox", identity)
    assert row["alias"] == jdoe.alias


@pytest.mark.django_db
def test_it_rejects_an_unknown_mailbox(jdoe):
    with pytest.raises(CommandError, match="No mailbox 'nobody'"):
        eas("get-mailbox", "nobody")


@pytest.mark.django_db
def test_csv_joins_device_id_lists(jdoe, cli_actor):
    actions.set_mailbox(cli_actor, jdoe, add_allowed=["AAA1", "BBB2"])
    [row] = list(csv.DictReader(io.StringIO(eas("get-mailbox", "jdoe", "--format", "csv"))))
    assert list(row) == MAILBOX_KEYS
    assert row["allowed_device_ids"].split(";") == listed(jdoe, DeviceIdList.ALLOWED)
    assert row["activesync_enabled"] == "true"


@pytest.mark.django_db
def test_the_table_shows_every_mailbox(jdoe, cli_actor):
    actions.create_mailbox(cli_actor, alias="zed", email="zed@example.org")
    lines = eas("get-mailbox").splitlines()
    assert lines[0].startswith("ALIAS")
    assert [line.split()[0] for line in lines[1:]] == ["jdoe", "zed"]


@pytest.mark.django_db
def test_disabling_activesync_blocks_the_devices_by_policy(jdoe):
    out = eas("set-mailbox", "jdoe", "--activesync-enabled", "false")
    jdoe.refresh_from_db()
    assert jdoe.activesync_enabled is False
    device = MobileDevice.objects.get(mailbox=jdoe)
    assert (device.access_state, device.access_state_reason) == (
        AccessState.BLOCKED,
        AccessReason.POLICY,
    )
    event = AuditEvent.objects.filter(action="mailbox.update").latest("id")
    assert event.source == AuditSource.CLI
    assert out.splitlines()[0] == event.message
    assert "activesync_enabled: True -> False" in out


@pytest.mark.django_db
def test_it_edits_the_allowed_and_blocked_lists(jdoe, cli_actor):
    actions.set_mailbox(cli_actor, jdoe, add_allowed=["KEEPME", "DROPME"], add_blocked=["UNBLOCK"])
    eas(
        "set-mailbox",
        "jdoe@example.org",
        "--add-allowed-device-id",
        "ApplF17XK2ABCDEF",
        "--add-allowed-device-id",
        "NEWONE",
        "--remove-allowed-device-id",
        "dropme",
        "--add-blocked-device-id",
        "BADONE",
        "--remove-blocked-device-id",
        "UNBLOCK",
        "--display-name",
        "Jane Q. Doe",
    )
    assert listed(jdoe, DeviceIdList.ALLOWED) == sorted(["ApplF17XK2ABCDEF", "KEEPME", "NEWONE"])
    assert listed(jdoe, DeviceIdList.BLOCKED) == ["BADONE"]
    device = MobileDevice.objects.get(mailbox=jdoe)
    assert device.access_state_reason == AccessReason.INDIVIDUAL
    jdoe.refresh_from_db()
    assert jdoe.display_name == "Jane Q. Doe"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["jdoe", "--activesync-enabled", "yes"], "true or false"),
        (["jdoe", "--activesync-enabled", "1"], "true or false"),
        (["nobody", "--activesync-enabled", "false"], "No mailbox 'nobody'"),
        (["jdoe", "--add-allowed-device-id", "has space"], "not a valid DeviceId"),
        (["jdoe", "--add-allowed-device-id", "X1", "--add-blocked-device-id", "x1"], "both"),
        (["jdoe"], "nothing to change"),
    ],
    ids=["bad-boolean", "numeric-boolean", "unknown-mailbox", "bad-id", "both-lists", "nothing"],
)
def test_it_rejects_bad_changes_and_changes_nothing(jdoe, args, message):
    before = counts()
    state = MobileDevice.objects.values_list("access_state", "access_state_reason").get()
    with pytest.raises(CommandError, match=message):
        eas("set-mailbox", *args)
    assert counts() == before
    jdoe.refresh_from_db()
    assert jdoe.activesync_enabled is True
    assert MobileDevice.objects.values_list("access_state", "access_state_reason").get() == state


def test_a_bad_boolean_is_one_error_line_and_a_non_zero_exit(tmp_path):
    result = run_eas(tmp_path, "set-mailbox", "jdoe", "--activesync-enabled", "maybe")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "eas: error: --activesync-enabled takes true or false, not 'maybe'."
    ]
