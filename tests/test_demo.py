"""devices.demo.seed_demo and `eas seed-demo`."""

import stat
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.utils import timezone

from devices import access, actions, demo
from devices.evaluation import device_facts, load_rules, mailbox_facts, org_facts
from devices.models import (
    AccessReason,
    AccessState,
    AuditEvent,
    AuditSource,
    DeviceAccessRule,
    Mailbox,
    MobileDevice,
    OrgSettings,
)
from devices.permissions import HELP_DESK_GROUP
from tests.cli_support import eas

# Every state a consistent database can hold at once under the default Quarantine.
# (Allowed / Global needs the default Allow, so it cannot sit next to Quarantined / Global.)
EXPECTED_STATES = {
    (AccessState.ALLOWED, AccessReason.INDIVIDUAL),
    (AccessState.ALLOWED, AccessReason.DEVICE_RULE),
    (AccessState.BLOCKED, AccessReason.INDIVIDUAL),
    (AccessState.BLOCKED, AccessReason.DEVICE_RULE),
    (AccessState.BLOCKED, AccessReason.POLICY),
    (AccessState.QUARANTINED, AccessReason.GLOBAL),
    (AccessState.DEVICE_DISCOVERY, AccessReason.GLOBAL),
}


@pytest.fixture(autouse=True)
def _demo_settings(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.VAR_DIR = tmp_path


@pytest.fixture
def seeded(db):
    return demo.seed_demo()


@pytest.mark.django_db
def test_it_puts_devices_in_every_access_state(seeded):
    states = set(MobileDevice.objects.values_list("access_state", "access_state_reason"))
    assert states == EXPECTED_STATES
    assert MobileDevice.objects.count() == 40
    assert Mailbox.objects.count() == 12
    assert seeded["states"] == {
        f"{state}/{reason}": MobileDevice.objects.filter(
            access_state=state, access_state_reason=reason
        ).count()
        for state, reason in states
    }


@pytest.mark.django_db
def test_every_state_is_what_the_engine_decides(seeded):
    now = timezone.now()
    rules, org = load_rules(), org_facts(OrgSettings.load())
    for device in MobileDevice.objects.select_related("mailbox"):
        decision = access.decide(
            mailbox_facts(device.mailbox), device_facts(device), rules, org, now
        )
        assert (device.access_state, device.access_state_reason, device.access_rule_id) == (
            decision.state,
            decision.reason,
            decision.rule_id,
        ), device


@pytest.mark.django_db
def test_it_uses_real_world_device_strings(seeded):
    iphone = MobileDevice.objects.filter(device_model="iPhone6C2").first()
    assert (iphone.device_type, iphone.device_os, iphone.user_agent) == (
        "iPhone",
        "iOS 8.1 12B411",
        "Apple-iPhone6C2/1202.411",
    )
    assert iphone.device_id.startswith("Appl")
    assert MobileDevice.objects.filter(device_type="Outlook").exists()
    assert MobileDevice.objects.filter(device_model="SGH-I317M").exists()
    assert not MobileDevice.objects.filter(device_type="EASProbeDeviceType").exists()


@pytest.mark.django_db
def test_first_seen_spreads_over_the_last_30_days(seeded):
    now = timezone.now()
    first_seen = list(MobileDevice.objects.values_list("first_seen", flat=True))
    assert min(first_seen) >= now - timedelta(days=30)
    assert max(first_seen) <= now
    assert max(first_seen) - min(first_seen) > timedelta(days=14)


@pytest.mark.django_db
def test_rules_settings_and_lists_went_through_the_actions(seeded):
    assert set(
        DeviceAccessRule.objects.values_list("characteristic", "query_string", "access_level")
    ) == {("DeviceType", "Outlook", "Allow"), ("DeviceModel", "SGH-*", "Block")}
    org = OrgSettings.load()
    assert org.default_access_level == "Quarantine"
    assert org.admin_mail_recipients
    actions_done = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "demo.seed",
        "mailbox.create",
        "rule.create",
        "devices.grandfather",
        "org_settings.update",
        "device.allow",
        "device.block",
        "mailbox.update",
    } <= actions_done


@pytest.mark.django_db
def test_it_creates_the_staff_and_one_login_per_mailbox(seeded):
    User = get_user_model()
    logins = seeded["logins"]
    admin, helpdesk = User.objects.get(username="admin"), User.objects.get(username="helpdesk")
    assert admin.is_superuser and admin.is_staff
    assert helpdesk.is_staff and not helpdesk.is_superuser
    assert helpdesk.groups.filter(name=HELP_DESK_GROUP).exists()
    for mailbox in Mailbox.objects.select_related("user"):
        assert mailbox.user.username == mailbox.alias
        assert mailbox.user.check_password(logins[mailbox.alias])
    assert admin.check_password(logins["admin"])
    assert helpdesk.check_password(logins["helpdesk"])
    assert set(logins) == {"admin", "helpdesk", *Mailbox.objects.values_list("alias", flat=True)}


@pytest.mark.django_db
def test_the_logins_file_is_private_and_complete(seeded):
    path = demo.logins_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    for username, password in seeded["logins"].items():
        assert any(line.split() == [username, password] for line in text.splitlines())


@pytest.mark.django_db
def test_if_empty_does_nothing_when_a_mailbox_exists(cli_actor):
    actions.create_mailbox(cli_actor, alias="jdoe", email="jdoe@example.org")
    events = AuditEvent.objects.count()
    assert demo.seed_demo(if_empty=True) == {}
    assert Mailbox.objects.count() == 1
    assert AuditEvent.objects.count() == events
    assert not demo.logins_path().exists()


@pytest.mark.django_db
def test_without_if_empty_it_refuses_a_database_with_mailboxes(cli_actor):
    actions.create_mailbox(cli_actor, alias="jdoe", email="jdoe@example.org")
    with pytest.raises(actions.ActionError, match="already has mailboxes"):
        demo.seed_demo()
    assert Mailbox.objects.count() == 1


@pytest.mark.django_db
def test_it_scales_with_bulk_mailboxes_without_logins():
    result = demo.seed_demo(mailboxes=60, devices=300)
    assert Mailbox.objects.count() == 60
    assert MobileDevice.objects.count() == 300
    assert Mailbox.objects.filter(user__isnull=False).count() == demo.LOGIN_MAILBOXES
    assert len(result["logins"]) == demo.LOGIN_MAILBOXES + 2
    assert len(set(Mailbox.objects.values_list("alias", flat=True))) == 60
    states = set(MobileDevice.objects.values_list("access_state", "access_state_reason"))
    assert states == EXPECTED_STATES


@pytest.mark.django_db
def test_the_command_prints_the_logins_and_audits_as_cli():
    out = eas("seed-demo", "--mailboxes", "3", "--devices", "10")
    logins = dict(line.split() for line in demo.logins_path().read_text().splitlines()[1:])
    for username, password in logins.items():
        assert f"{username}  " in out and password in out
    assert set(logins) == {"admin", "helpdesk", *Mailbox.objects.values_list("alias", flat=True)}
    assert set(AuditEvent.objects.values_list("source", flat=True)) == {AuditSource.CLI}
    assert Mailbox.objects.count() == 3
    assert MobileDevice.objects.count() == 10


@pytest.mark.django_db
def test_the_command_says_when_demo_data_is_already_present():
    eas("seed-demo", "--mailboxes", "2", "--devices", "4", "--if-empty")
    events = AuditEvent.objects.count()
    out = eas("seed-demo", "--if-empty")
    assert out.strip() == (f"Demo data already present; logins are in {demo.logins_path()}")
    assert AuditEvent.objects.count() == events
    demo.logins_path().unlink()
    assert eas("seed-demo", "--if-empty").strip() == "Demo data already present"


@pytest.mark.django_db
def test_the_command_rejects_a_non_empty_database_and_bad_sizes(cli_actor):
    with pytest.raises(CommandError, match="at least one mailbox"):
        eas("seed-demo", "--mailboxes", "0")
    actions.create_mailbox(cli_actor, alias="jdoe", email="jdoe@example.org")
    with pytest.raises(CommandError, match="already has mailboxes"):
        eas("seed-demo")
