"""eas import-mailboxes / import-devices: Exchange's own CSV exports, for a migration.

The files are written here the way PowerShell's Export-Csv writes them: a
`#TYPE` first line, every value in double quotes, CRLF, UTF-8 with a BOM
(or UTF-16, or ';' under -UseCulture), with the many columns Get-CASMailbox
and Get-MobileDevice export, most of which the import ignores.
"""

import getpass
import io
import sys
from datetime import UTC, datetime

import pytest
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices import actions
from devices.audit import SYSTEM
from devices.models import (
    AccessPolicy,
    AccessReason,
    AccessState,
    AuditEvent,
    AuditSource,
    DeviceClass,
    DeviceStateChange,
    Mailbox,
    MailboxDeviceId,
    MobileDevice,
)
from notifications.models import Kind, Notification
from tests.cli_support import eas, run_eas

CAS_TYPE = "#TYPE Microsoft.Exchange.Data.Directory.Management.CASMailbox"
DEVICE_TYPE = "#TYPE Microsoft.Exchange.Data.Directory.Management.MobileDevice"
CAS_COLUMNS = [
    "ActiveSyncAllowedDeviceIDs",
    "ActiveSyncBlockedDeviceIDs",
    "ActiveSyncMailboxPolicy",
    "ActiveSyncEnabled",
    "OWAEnabled",
    "DisplayName",
    "PrimarySmtpAddress",
    "SamAccountName",
    "Name",
    "Identity",
    "Guid",
]
DEVICE_COLUMNS = [
    "FriendlyName",
    "DeviceId",
    "DeviceImei",
    "DeviceMobileOperator",
    "DeviceOS",
    "DeviceOSLanguage",
    "DeviceTelephoneNumber",
    "DeviceType",
    "DeviceUserAgent",
    "DeviceModel",
    "FirstSyncTime",
    "UserDisplayName",
    "DeviceAccessState",
    "DeviceAccessStateReason",
    "DeviceAccessControlRule",
    "ClientVersion",
    "ClientType",
    "IsManaged",
    "Identity",
    "Name",
    "Guid",
]


def export_csv(path, type_line, columns, rows, *, encoding="utf-8-sig", delimiter=","):
    """Write rows (dicts) as Export-Csv does; missing values are empty strings."""

    def quoted(value) -> str:
        return '"' + str(value).replace('"', '""') + '"'

    lines = [type_line] if type_line else []
    lines.append(delimiter.join(quoted(c) for c in columns))
    for row in rows:
        lines.append(delimiter.join(quoted(row.get(c, "")) for c in columns))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return str(path)


def cas(alias, address, **extra):
    """A Get-CASMailbox row as Exchange 2016 exports it (lists already joined)."""
    display = extra.pop("display", alias.title())
    return {
        "ActiveSyncAllowedDeviceIDs": "",
        "ActiveSyncBlockedDeviceIDs": "",
        "ActiveSyncMailboxPolicy": "Default",
        "ActiveSyncEnabled": "True",
        "OWAEnabled": "True",
        "DisplayName": display,
        "PrimarySmtpAddress": address,
        "SamAccountName": alias,
        "Name": display,
        "Identity": f"contoso.com/Users/{display}",
        "Guid": "0f5a2c3e-8a9b-4c1d-9e2f-1234567890ab",
        **extra,
    }


def mobile(user, device_id, state="Allowed", reason="Global", **extra):
    """A Get-MobileDevice row; `user` is the user object's name in the Identity path."""
    device_type = extra.pop("DeviceType", "iPhone")
    return {
        "FriendlyName": "",
        "DeviceId": device_id,
        "DeviceImei": "",
        "DeviceMobileOperator": "",
        "DeviceOS": "iOS 17.4 21E219",
        "DeviceOSLanguage": "en-US",
        "DeviceTelephoneNumber": "",
        "DeviceType": device_type,
        "DeviceUserAgent": "Apple-iPhone15C2/2104.1",
        "DeviceModel": "iPhone15,2",
        "FirstSyncTime": "3/1/2025 2:30:00 PM",
        "UserDisplayName": f"contoso.com/Users/{user}",
        "DeviceAccessState": state,
        "DeviceAccessStateReason": reason,
        "DeviceAccessControlRule": "",
        "ClientVersion": "16.1",
        "ClientType": "EAS",
        "IsManaged": "False",
        "Identity": f"contoso.com/Users/{user}/ExchangeActiveSyncDevices/{device_type}§{device_id}",
        "Name": f"{device_type}§{device_id}",
        "Guid": "5d6e7f80-1a2b-4c3d-8e9f-abcdefabcdef",
        **extra,
    }


def everything() -> tuple:
    """Every row an import may write."""
    return (
        list(Mailbox.objects.order_by("pk").values()),
        list(MailboxDeviceId.objects.order_by("pk").values("mailbox", "device_key", "list")),
        list(MobileDevice.objects.order_by("pk").values()),
        list(DeviceClass.objects.order_by("pk").values("device_type", "device_model")),
        AuditEvent.objects.count(),
        DeviceStateChange.objects.count(),
        Notification.objects.count(),
    )


def lists(alias) -> dict[str, str]:
    return dict(
        MailboxDeviceId.objects.filter(mailbox__alias=alias).values_list("device_id", "list")
    )


def decided(device_id) -> tuple[str, str]:
    device = MobileDevice.objects.get(device_id=device_id)
    return device.access_state, device.access_state_reason


# ---------------------------------------------------------------------------
# import-mailboxes


@pytest.mark.django_db
def test_it_imports_a_get_casmailbox_export(tmp_path):
    path = export_csv(
        tmp_path / "mailboxes.csv",
        CAS_TYPE,
        CAS_COLUMNS,
        [
            cas(
                "jdoe",
                "jdoe@contoso.com",
                display="Jane Doe",
                ActiveSyncAllowedDeviceIDs="ApplF17XK2AB ApplDMPQ1234",
            ),
            cas(
                "rsmith",
                "Rob.Smith@contoso.com",
                display="Rob Smith",
                ActiveSyncBlockedDeviceIDs="SEC1D9A24B7",
            ),
            cas("leaver", "leaver@contoso.com", ActiveSyncEnabled="False"),
        ],
    )
    out = eas("import-mailboxes", path)
    assert Mailbox.objects.count() == 3
    jdoe = Mailbox.objects.get(alias="jdoe")
    assert (jdoe.primary_smtp_address, jdoe.display_name, jdoe.activesync_enabled) == (
        "jdoe@contoso.com",
        "Jane Doe",
        True,
    )
    assert Mailbox.objects.get(alias="leaver").activesync_enabled is False
    assert lists("jdoe") == {"ApplF17XK2AB": "allowed", "ApplDMPQ1234": "allowed"}
    assert lists("rsmith") == {"SEC1D9A24B7": "blocked"}
    assert Mailbox.objects.get(alias="rsmith").user is None  # no logins are made

    event = AuditEvent.objects.get()
    assert (event.action, event.source) == ("mailboxes.import", "cli")
    assert event.actor_name == getpass.getuser()  # who ran it, never "cli"
    assert event.after == {
        "created": 3,
        "updated": 0,
        "allowed_device_ids": 2,
        "blocked_device_ids": 1,
    }
    assert out.splitlines() == [
        "Imported 3 mailboxes (3 new, 0 updated)",
        "  allowed DeviceIds added: 2",
        "  blocked DeviceIds added: 1",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value, expected",
    [
        ("ApplA ApplB", ["ApplA", "ApplB"]),
        ("ApplA;ApplB", ["ApplA", "ApplB"]),
        ("ApplA, ApplB", ["ApplA", "ApplB"]),
        ("{ApplA, ApplB}", ["ApplA", "ApplB"]),
        ("", []),
    ],
    ids=["spaces", "semicolons", "commas", "braces", "empty"],
)
def test_device_id_lists_in_any_separator(tmp_path, value, expected):
    path = export_csv(
        tmp_path / "m.csv",
        CAS_TYPE,
        CAS_COLUMNS,
        [cas("jdoe", "jdoe@contoso.com", ActiveSyncAllowedDeviceIDs=value)],
    )
    eas("import-mailboxes", path)
    assert sorted(lists("jdoe")) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        "System.String[]",
        "System.Collections.ArrayList",
        "Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]",
    ],
)
def test_an_unexpanded_list_is_an_error_not_an_empty_list(tmp_path, value):
    path = export_csv(
        tmp_path / "m.csv",
        CAS_TYPE,
        CAS_COLUMNS,
        [
            cas("ok", "ok@contoso.com"),
            cas("jdoe", "jdoe@contoso.com", ActiveSyncAllowedDeviceIDs=value),
        ],
    )
    before = everything()
    with pytest.raises(CommandError) as raised:
        eas("import-mailboxes", path)
    message = str(raised.value)
    assert message.startswith(
        "1 bad row, nothing imported: line 4: ActiveSyncAllowedDeviceIDs reads"
    )
    assert "-join ';'" in message
    assert everything() == before


@pytest.mark.django_db
def test_the_alias_comes_from_alias_identity_samaccountname_or_the_address(tmp_path):
    columns = ["Alias", "Identity", "SamAccountName", "PrimarySmtpAddress", "Name"]
    path = export_csv(
        tmp_path / "m.csv",
        None,
        columns,
        [
            {"Alias": "a.one", "Identity": "ignored", "PrimarySmtpAddress": "a1@contoso.com"},
            {"Identity": "contoso.com/Users/btwo", "PrimarySmtpAddress": "b2@contoso.com"},
            {"Identity": "CONTOSO\\cthree", "PrimarySmtpAddress": "c3@contoso.com"},
            {
                "Identity": "Dee Four",
                "SamAccountName": "dfour",
                "PrimarySmtpAddress": "d4@contoso.com",
            },
            {
                "Identity": "Eve Five",
                "PrimarySmtpAddress": "eve.five@contoso.com",
                "Name": "Eve Five",
            },
        ],
    )
    eas("import-mailboxes", path)
    assert dict(Mailbox.objects.values_list("alias", "display_name")) == {
        "a.one": "a.one",
        "btwo": "btwo",
        "cthree": "cthree",
        "dfour": "dfour",
        "eve.five": "Eve Five",
    }


@pytest.mark.django_db
def test_every_bad_row_is_reported_by_line_and_nothing_is_imported(tmp_path):
    path = export_csv(
        tmp_path / "m.csv",
        CAS_TYPE,
        CAS_COLUMNS,
        [
            cas("good", "good@contoso.com"),  # line 3
            cas("nomail", "not-an-address"),  # line 4
            cas("flag", "flag@contoso.com", ActiveSyncEnabled="Yes"),  # line 5
            cas("GOOD", "other@contoso.com"),  # line 6: alias again
            cas("samemail", "GOOD@contoso.com"),  # line 7: address again
            cas(
                "both",
                "both@contoso.com",
                ActiveSyncAllowedDeviceIDs="X1",
                ActiveSyncBlockedDeviceIDs="x1",
            ),
            cas("spaced", "spaced@contoso.com", ActiveSyncBlockedDeviceIDs="A" * 65),  # line 9
        ],
    )
    before = everything()
    with pytest.raises(CommandError) as raised:
        eas("import-mailboxes", path)
    message = str(raised.value)
    assert message.startswith("6 bad rows, nothing imported: line 4: ")
    for line, text in [
        (4, "'not-an-address' is not a valid e-mail address"),
        (5, "ActiveSyncEnabled is 'Yes', not True or False"),
        (6, "alias GOOD is also on line 3"),
        (7, "address GOOD@contoso.com is also on line 3"),
        (8, "DeviceId x1 is both allowed and blocked"),
        (9, "is not a valid DeviceId"),
    ]:
        assert f"line {line}: " in message
        assert text in message.split(f"line {line}: ")[1].split("; line")[0]
    assert everything() == before


@pytest.mark.django_db
def test_an_existing_mailbox_is_updated_and_its_lists_merged(tmp_path, cli_actor):
    jdoe = actions.create_mailbox(cli_actor, alias="jdoe", email="jdoe@contoso.com").obj
    actions.set_mailbox(cli_actor, jdoe, add_blocked=["STOLEN1"], add_allowed=["KEEP1"])
    phone = actions.record_contact(
        cli_actor, jdoe, actions.Contact(device_id="PHONE1", device_type="iPhone")
    )
    assert phone.access_state == AccessState.ALLOWED
    path = export_csv(
        tmp_path / "m.csv",
        CAS_TYPE,
        CAS_COLUMNS,
        [
            cas(
                "JDoe",
                "JDOE@contoso.com",
                display="Jane Doe",
                ActiveSyncEnabled="False",
                ActiveSyncAllowedDeviceIDs="stolen1;NEW1",
            ),
            cas("zed", "zed@contoso.com"),
        ],
    )
    events = AuditEvent.objects.count()
    out = eas("import-mailboxes", path)
    jdoe.refresh_from_db()
    assert (jdoe.alias, jdoe.display_name, jdoe.activesync_enabled) == ("jdoe", "Jane Doe", False)
    # Merged: the blocked id stays blocked, the new one is added, nothing is taken off.
    assert lists("jdoe") == {"STOLEN1": "blocked", "KEEP1": "allowed", "NEW1": "allowed"}
    assert decided("PHONE1") == (AccessState.BLOCKED, AccessReason.POLICY)
    [event] = AuditEvent.objects.all()[events:]
    assert event.message == (
        "Imported 2 mailboxes (1 new, 1 updated); 1 device from allowed to blocked"
    )
    assert DeviceStateChange.objects.get(event=event).device_id == phone.pk
    assert out.splitlines()[1:] == ["  allowed DeviceIds added: 1", "  blocked DeviceIds added: 0"]


@pytest.mark.django_db
def test_an_existing_alias_with_another_address_is_refused(tmp_path, cli_actor):
    actions.create_mailbox(cli_actor, alias="jdoe", email="jdoe@contoso.com")
    actions.create_mailbox(cli_actor, alias="ann", email="ann@contoso.com")
    path = export_csv(
        tmp_path / "m.csv",
        CAS_TYPE,
        CAS_COLUMNS,
        [cas("jdoe", "jane@contoso.com"), cas("anna", "ANN@contoso.com")],
    )
    before = everything()
    with pytest.raises(CommandError) as raised:
        eas("import-mailboxes", path)
    assert "line 3: mailbox jdoe exists with the address jdoe@contoso.com" in str(raised.value)
    assert "line 4: address ANN@contoso.com belongs to mailbox ann" in str(raised.value)
    assert everything() == before


@pytest.mark.django_db
def test_new_mailboxes_join_their_domain_policy(tmp_path, cli_actor):
    actions.create_policy(
        cli_actor, name="Sales", default_access_level="Quarantine", domains=["sales.contoso.com"]
    )
    path = export_csv(
        tmp_path / "m.csv",
        CAS_TYPE,
        CAS_COLUMNS,
        [cas("sam", "sam@sales.contoso.com"), cas("olga", "olga@contoso.com")],
    )
    eas("import-mailboxes", path)
    policy = AccessPolicy.objects.get()
    assert Mailbox.objects.get(alias="sam").access_policy == policy
    assert Mailbox.objects.get(alias="olga").access_policy is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "encoding, delimiter, type_line",
    [
        ("utf-8-sig", ",", CAS_TYPE),
        ("utf-8", ",", None),  # PowerShell 7: no BOM, -NoTypeInformation
        ("utf-16", ",", CAS_TYPE),  # -Encoding Unicode
        ("utf-8-sig", ";", CAS_TYPE),  # -UseCulture in de-DE
        ("cp1252", ",", CAS_TYPE),  # Windows PowerShell's -Encoding Default
    ],
    ids=["utf8-bom", "utf8-plain", "utf16", "semicolon", "ansi"],
)
def test_any_encoding_and_separator_export_csv_writes(tmp_path, encoding, delimiter, type_line):
    path = export_csv(
        tmp_path / "m.csv",
        type_line,
        CAS_COLUMNS,
        [cas("jdoe", "jdoe@contoso.com", display="Jürgen Doe", ActiveSyncAllowedDeviceIDs="A1;B2")],
        encoding=encoding,
        delimiter=delimiter,
    )
    eas("import-mailboxes", path)
    jdoe = Mailbox.objects.get()
    assert (jdoe.alias, jdoe.display_name) == ("jdoe", "Jürgen Doe")
    assert sorted(lists("jdoe")) == ["A1", "B2"]


@pytest.mark.django_db
def test_dash_reads_standard_input(tmp_path, monkeypatch):
    path = export_csv(tmp_path / "m.csv", CAS_TYPE, CAS_COLUMNS, [cas("jdoe", "jdoe@contoso.com")])
    with open(path, "rb") as f:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(f.read())))
    eas("import-mailboxes", "-")
    assert Mailbox.objects.get().alias == "jdoe"


@pytest.mark.django_db
def test_column_names_in_any_case_and_order(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("primarysmtpaddress,ALIAS,activesyncenabled\njdoe@contoso.com,jdoe,FALSE\n")
    eas("import-mailboxes", str(path))
    assert Mailbox.objects.get().activesync_enabled is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content, message",
    [
        (f"{CAS_TYPE}\r\n", "has no header line"),
        (f'{CAS_TYPE}\r\n"Alias","PrimarySmtpAddress"\r\n', "no data rows"),
        ('"Alias","DisplayName"\r\n"jdoe","Jane"\r\n', "no PrimarySmtpAddress column"),
        ('"Alias","alias"\r\n"a","b"\r\n', "line 1: the header names 'alias' twice"),
    ],
    ids=["no-header", "no-rows", "no-address-column", "duplicate-column"],
)
def test_a_file_that_is_no_mailbox_export_is_refused(tmp_path, content, message):
    path = tmp_path / "m.csv"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        eas("import-mailboxes", str(path))
    assert not AuditEvent.objects.exists()


def test_a_missing_file_is_one_error_line_and_a_non_zero_exit(tmp_path):
    result = run_eas(tmp_path, "import-mailboxes", str(tmp_path / "nope.csv"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"eas: error: Cannot read {tmp_path / 'nope.csv'}: No such file or directory."
    ]


def test_a_broken_file_names_every_broken_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(
        "Alias,PrimarySmtpAddress\njdoe,jdoe@contoso.com\na,b,c\nok,ok@contoso.com\nd,e,f,g\n"
    )
    result = run_eas(tmp_path, "import-mailboxes", str(path))
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        f"eas: error: {path}: line 3: 3 values for 2 columns; line 5: 4 values for 2 columns"
        " (a separator inside a value that is not quoted?)."
    ]


# ---------------------------------------------------------------------------
# import-devices


@pytest.fixture
def mailboxes(cli_actor):
    """Quarantine by default, admins mailed; jdoe (Jane Doe) and rsmith (Rob Smith)."""
    actions.set_org_settings(
        cli_actor, default_access_level="Quarantine", admin_mail_recipients=["hd@contoso.com"]
    )
    jdoe = actions.create_mailbox(
        cli_actor, alias="jdoe", email="jdoe@contoso.com", display_name="Jane Doe"
    ).obj
    rsmith = actions.create_mailbox(
        cli_actor, alias="rsmith", email="rsmith@contoso.com", display_name="Rob Smith"
    ).obj
    return jdoe, rsmith


@pytest.mark.django_db
def test_it_imports_a_get_mobiledevice_export_mirroring_exchange(tmp_path, mailboxes):
    path = export_csv(
        tmp_path / "devices.csv",
        DEVICE_TYPE,
        DEVICE_COLUMNS,
        [
            mobile(
                "jdoe",
                "ApplF17XK2AB",
                "Allowed",
                "Individual",
                FriendlyName="Jane's iPhone",
                DeviceImei="356789101234567",
                DeviceMobileOperator="Telekom.de",
                DeviceTelephoneNumber="+49301234567",
            ),
            mobile("jdoe", "ApplBLOCKED1", "Blocked", "Individual"),
            mobile(
                "Rob Smith",
                "SEC1D9A24B7",
                "Allowed",
                "Global",
                DeviceType="Android",
                DeviceModel="SM-S918B",
                DeviceOS="Android 14",
                DeviceUserAgent="Android-SAMSUNG-SM-S918B/101.1",
            ),
            mobile("Rob Smith", "ApplWAITING1", "Quarantined", "Global"),
        ],
    )
    mails = Notification.objects.count()
    out = eas("import-devices", path)
    assert lists("jdoe") == {"ApplF17XK2AB": "allowed", "ApplBLOCKED1": "blocked"}
    assert lists("rsmith") == {}
    assert decided("ApplF17XK2AB") == (AccessState.ALLOWED, AccessReason.INDIVIDUAL)
    assert decided("ApplBLOCKED1") == (AccessState.BLOCKED, AccessReason.INDIVIDUAL)
    # Exchange allowed it by its default; here the default is Quarantine.
    assert decided("SEC1D9A24B7") == (AccessState.QUARANTINED, AccessReason.GLOBAL)
    assert decided("ApplWAITING1") == (AccessState.QUARANTINED, AccessReason.GLOBAL)

    phone = MobileDevice.objects.get(device_id="ApplF17XK2AB")
    assert phone.mailbox.alias == "jdoe"
    assert (phone.device_type, phone.device_model, phone.device_os) == (
        "iPhone",
        "iPhone15,2",
        "iOS 17.4 21E219",
    )
    assert (phone.friendly_name, phone.imei, phone.mobile_operator, phone.phone_number) == (
        "Jane's iPhone",
        "356789101234567",
        "Telekom.de",
        "+49301234567",
    )
    assert (phone.user_agent, phone.device_os_language, phone.eas_version) == (
        "Apple-iPhone15C2/2104.1",
        "en-US",
        "16.1",
    )
    assert phone.device_info_received is True
    assert phone.first_seen == datetime(2025, 3, 1, 14, 30, tzinfo=UTC)  # TIME_ZONE is UTC
    assert MobileDevice.objects.get(device_id="SEC1D9A24B7").mailbox.alias == "rsmith"
    assert set(DeviceClass.objects.values_list("device_type", "device_model")) >= {
        ("iPhone", "iPhone15,2"),
        ("Android", "SM-S918B"),
    }

    event = AuditEvent.objects.get(action="devices.import")
    assert (event.source, event.actor_name) == (AuditSource.CLI, getpass.getuser())
    assert (
        event.message
        == "Imported 4 devices (4 new, 0 updated); 1 device from allowed to quarantined"
    )
    assert event.after["created"] == 4 and event.after["approve"] is False
    # Only the device whose state changes here has a history row and a mail.
    [change] = DeviceStateChange.objects.filter(event=event)
    assert (change.device.device_id, change.from_state, change.to_state) == (
        "SEC1D9A24B7",
        AccessState.ALLOWED,
        AccessState.QUARANTINED,
    )
    new_mails = Notification.objects.order_by("pk")[mails:]
    assert {(m.kind, m.recipient) for m in new_mails} == {
        (Kind.USER_QUARANTINED, "rsmith@contoso.com"),
        (Kind.ADMIN_QUARANTINED, "hd@contoso.com"),
    }
    assert out.splitlines()[0] == event.message


@pytest.mark.django_db
def test_approve_puts_every_device_but_a_blocked_one_on_the_allowed_list(tmp_path, mailboxes):
    path = export_csv(
        tmp_path / "d.csv",
        DEVICE_TYPE,
        DEVICE_COLUMNS,
        [
            mobile("jdoe", "ALLOWED1", "Allowed", "Global"),
            mobile("jdoe", "WAITING1", "Quarantined", "Global"),
            mobile("jdoe", "RULED1", "Allowed", "DeviceRule"),
            mobile("Rob Smith", "NOSTATE1", "", ""),
            mobile("Rob Smith", "STOLEN1", "Blocked", "Individual"),
            mobile("Rob Smith", "BYRULE1", "Blocked", "DeviceRule"),
        ],
    )
    out = eas("import-devices", path, "--approve")
    assert lists("jdoe") == {"ALLOWED1": "allowed", "WAITING1": "allowed", "RULED1": "allowed"}
    assert lists("rsmith") == {"NOSTATE1": "allowed", "STOLEN1": "blocked"}
    for device_id in ("ALLOWED1", "WAITING1", "RULED1", "NOSTATE1"):
        assert decided(device_id) == (AccessState.ALLOWED, AccessReason.INDIVIDUAL)
    assert decided("STOLEN1") == (AccessState.BLOCKED, AccessReason.INDIVIDUAL)
    assert decided("BYRULE1") == (AccessState.QUARANTINED, AccessReason.GLOBAL)  # no rule here
    event = AuditEvent.objects.get(action="devices.import")
    assert event.after["approve"] is True
    assert event.message.startswith("Imported 6 devices (6 new, 0 updated, approved)")
    assert out.splitlines()[1:] == ["  allowed DeviceIds added: 4", "  blocked DeviceIds added: 1"]
    # Switching the default afterwards changes nothing for them.
    actions.set_org_settings(SYSTEM, default_access_level="Block")
    assert decided("WAITING1") == (AccessState.ALLOWED, AccessReason.INDIVIDUAL)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "identity, user_display_name, extra",
    [
        ("contoso.com/Users/jdoe/ExchangeActiveSyncDevices/iPhone§X1", "", {}),
        ("jdoe\\ExchangeActiveSyncDevices\\iPhone§X1", "", {}),
        ("contoso.com/Users/Jane Doe/ExchangeActiveSyncDevices/iPhone§X1", "", {}),
        ("", "contoso.com/Users/Jane Doe", {}),
        ("", "Jane Doe", {}),
        ("", "", {"MailboxIdentity": "jdoe@contoso.com"}),
        ("", "", {"User": "CONTOSO\\jdoe"}),
        # The explicit column wins over what the Identity would say.
        ("rsmith\\ExchangeActiveSyncDevices\\iPhone§X1", "", {"MailboxIdentity": "jdoe"}),
        # An Identity naming nobody we know: the UserDisplayName still finds her.
        ("1b2c3d4e\\ExchangeActiveSyncDevices\\iPhone§X1", "contoso.com/Users/Jane Doe", {}),
    ],
    ids=[
        "identity-path",
        "identity-backslash",
        "identity-display-name",
        "user-display-name-path",
        "user-display-name",
        "mailbox-identity",
        "user-column",
        "explicit-column-first",
        "fallback-to-display-name",
    ],
)
def test_the_mailbox_is_found_from_any_of_the_columns(
    tmp_path, mailboxes, identity, user_display_name, extra
):
    columns = ["DeviceId", "DeviceType", "Identity", "UserDisplayName", *extra]
    row = {
        "DeviceId": "X1",
        "DeviceType": "iPhone",
        "Identity": identity,
        "UserDisplayName": user_display_name,
        **extra,
    }
    eas("import-devices", export_csv(tmp_path / "d.csv", DEVICE_TYPE, columns, [row]))
    assert MobileDevice.objects.get(device_id="X1").mailbox.alias == "jdoe"


@pytest.mark.django_db
def test_every_bad_device_row_is_reported_by_line_and_nothing_is_imported(tmp_path, mailboxes):
    path = export_csv(
        tmp_path / "d.csv",
        DEVICE_TYPE,
        DEVICE_COLUMNS,
        [
            mobile("jdoe", "GOOD1"),  # line 3
            mobile("nobody", "NOBODY1"),  # line 4
            mobile("jdoe", "has space"),  # line 5
            mobile("jdoe", "good1"),  # line 6: the same partnership again
            mobile("jdoe", "LATE1", FirstSyncTime="yesterday"),  # line 7
            mobile("jdoe", "ODD1", state="Sleeping"),  # line 8
            mobile("nobody", "", FirstSyncTime="31/31/2025"),  # line 9: three problems
        ],
    )
    before = everything()
    with pytest.raises(CommandError) as raised:
        eas("import-devices", path, "--approve")
    message = str(raised.value)
    assert message.startswith("6 bad rows, nothing imported: line 4: ")
    for line, text in [
        (4, "no mailbox 'nobody'"),
        (5, "'has space' is not a valid DeviceId"),
        (6, "DeviceId good1 is also on line 3"),
        (7, "FirstSyncTime 'yesterday' is not a date and time"),
        (8, "DeviceAccessState 'Sleeping' is not one of"),
        (9, "import the mailboxes first"),
    ]:
        assert text in message.split(f"line {line}: ")[1].split("; line")[0], line
    assert "not a valid DeviceId" in message.split("line 9: ")[1]
    assert "FirstSyncTime '31/31/2025'" in message.split("line 9: ")[1]
    assert everything() == before


@pytest.mark.django_db
def test_a_known_partnership_gets_the_files_details(tmp_path, mailboxes, cli_actor):
    jdoe, _ = mailboxes
    known = actions.record_contact(
        cli_actor, jdoe, actions.Contact(device_id="ApplKNOWN1", device_type="iPhone")
    )
    path = export_csv(
        tmp_path / "d.csv",
        DEVICE_TYPE,
        DEVICE_COLUMNS,
        [mobile("jdoe", "applknown1", "Allowed", "Individual", FriendlyName="Work phone")],
    )
    out = eas("import-devices", path)
    known.refresh_from_db()
    assert MobileDevice.objects.count() == 1
    assert (known.device_id, known.friendly_name, known.device_model) == (
        "ApplKNOWN1",
        "Work phone",
        "iPhone15,2",
    )
    assert (known.access_state, known.access_state_reason) == (
        AccessState.ALLOWED,
        AccessReason.INDIVIDUAL,
    )
    assert out.splitlines()[0].startswith("Imported 1 device (0 new, 1 updated)")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value, expected",
    [
        ("3/1/2025 2:30:00 PM", datetime(2025, 3, 1, 14, 30, tzinfo=UTC)),
        ("12/31/2024 11:59:59 PM", datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("01.03.2025 14:30:00", datetime(2025, 3, 1, 14, 30, tzinfo=UTC)),
        ("2025-03-01T14:30:00+01:00", datetime(2025, 3, 1, 13, 30, tzinfo=UTC)),
        ("2025-03-01 14:30:00", datetime(2025, 3, 1, 14, 30, tzinfo=UTC)),
    ],
    ids=["en-us", "en-us-late", "de-de", "iso-offset", "iso-space"],
)
def test_first_sync_time_as_export_csv_writes_it(tmp_path, mailboxes, value, expected):
    path = export_csv(
        tmp_path / "d.csv", DEVICE_TYPE, DEVICE_COLUMNS, [mobile("jdoe", "T1", FirstSyncTime=value)]
    )
    eas("import-devices", path)
    device = MobileDevice.objects.get()
    assert device.first_seen == expected
    assert device.last_seen == expected


@pytest.mark.django_db
def test_line_numbers_count_lines_inside_quoted_values(tmp_path, mailboxes):
    path = export_csv(
        tmp_path / "d.csv",
        DEVICE_TYPE,
        DEVICE_COLUMNS,
        [
            mobile("jdoe", "A1", FriendlyName="two\r\nlines"),  # lines 3-4
            mobile("nobody", "B1"),  # line 5
        ],
    )
    with pytest.raises(CommandError, match=r"^1 bad row, nothing imported: line 5: no mailbox"):
        eas("import-devices", path)


@pytest.mark.django_db
def test_the_import_is_bulk_whatever_the_number_of_rows(tmp_path, cli_actor):
    """Statements per batch of rows, never per row (SQLite's batches are smaller)."""
    actions.create_mailbox(cli_actor, alias="jdoe", email="jdoe@contoso.com")

    def queries(n: int, name: str) -> int:
        rows = [mobile("jdoe", f"{name}{i:05d}") for i in range(n)]
        path = export_csv(tmp_path / f"{name}.csv", DEVICE_TYPE, DEVICE_COLUMNS, rows)
        with CaptureQueriesContext(connection) as captured:
            eas("import-devices", path)
        return len(captured)

    few, many = queries(10, "FEW"), queries(1000, "MANY")
    assert MobileDevice.objects.count() == 1010
    assert MobileDevice.objects.filter(access_state=AccessState.ALLOWED).count() == 1010
    # 990 more rows: a few more batches (about 45 rows each on SQLite), not 990 statements.
    assert many - few <= 40, (few, many)
