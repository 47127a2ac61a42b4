"""What a phone is told in each state, command by command, on EAS 12.1, 14.1 and 16.1
(DESIGN.md, "A denial is an answer the phone understands"; issue 15).

Every WBXML reply is read twice: by devices.eas and by libwbxml's wbxml2xml,
which shares no table with ECP.
"""

import base64
import logging
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import Client

from devices import actions, evaluation
from devices.audit import Actor
from devices.eas import build_device_information_body, decode, status
from devices.eas.client import (
    find_text,
    folder_sync_request,
    get_item_estimate_request,
    ping_request,
    provision_request,
    sync_request,
)
from devices.eas.responses import RESPONSE_ROOTS
from devices.gate import notice
from devices.links import notice_issue_time
from devices.models import AuditEvent, AuditSource, DeviceStateChange, MobileDevice, OrgSettings
from devices.notify import owner_context
from notifications.models import Kind
from notifications.rendering import render
from tests.wbxml_reference import ours_as_reference, reference_tree

GATE = "/Microsoft-Server-ActiveSync"
WBXML = "application/vnd.ms-sync.wbxml"
ADMIN = Actor(source=AuditSource.CLI)
VERSIONS = ["12.1", "14.1", "16.1"]
MODERN = ["14.1", "16.1"]
IPHONE = "Apple-iPhone14C5/2006.1"
NO_MODEL = "ECP-test/1.0"
INSERT = "Call the helpdesk on 1234 & ask for Sam."


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ECP_NOTICE_HOLD_SECONDS = 0  # Ping and waiting Syncs answer at once here
    settings.ECP_NOTICE_POLL_SECONDS = 0
    cache.clear()
    evaluation._compiled = None
    yield
    cache.clear()


@pytest.fixture
def alice(db):
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


def quarantine_all():
    actions.set_org_settings(
        ADMIN,
        default_access_level="Quarantine",
        discovery_window_minutes=0,
        user_mail_insert=INSERT,
    )


def block_all():
    actions.set_org_settings(ADMIN, default_access_level="Block")


def phone(cmd, body=b"", *, version="14.1", user_agent=IPHONE, device="ALICEPHONE1", path=GATE):
    token = base64.b64encode(b"alice:alice-secret").decode()
    return Client().post(
        path,
        body,
        content_type=WBXML,
        headers={
            "Authorization": f"Basic {token}",
            "MS-ASProtocolVersion": version,
            "User-Agent": user_agent,
        },
        QUERY_STRING=f"Cmd={cmd}&User=alice&DeviceId={device}&DeviceType=iPhone",
    )


def read(response):
    """The reply, decoded by ECP; the same as libwbxml reads it."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == WBXML
    ours = decode(response.content)
    assert ours_as_reference(ours) == reference_tree(response.content)
    return ours


def status_of(root):
    return int(find_text(root, root.tag.partition(":")[0] + ":Status"))


# --- blocked ------------------------------------------------------------------------

COMMANDS = [
    "FolderSync",
    "Sync",
    "GetItemEstimate",
    "Ping",
    "Provision",
    "Settings",
    "ItemOperations",
    "SendMail",
    "MoveItems",
    "Search",
    "ResolveRecipients",
    "MeetingResponse",
]


@pytest.mark.parametrize("version", MODERN)
@pytest.mark.parametrize("cmd", COMMANDS)
def test_blocked_gets_its_commands_response_with_status_129(alice, cmd, version):
    block_all()
    response = phone(cmd, version=version)
    root = read(response)
    assert root.tag == RESPONSE_ROOTS[cmd]
    assert status_of(root) == status.Common.DEVICE_IS_BLOCKED_FOR_THIS_USER == 129
    assert response["X-MS-ASThrottle"] == "Global"
    assert response["X-EAS-Access-State"] == "Blocked"


@pytest.mark.parametrize("cmd", COMMANDS)
def test_blocked_before_14_is_http_403(alice, cmd):
    block_all()
    response = phone(cmd, version="12.1")
    assert response.status_code == 403
    assert response["X-MS-ASThrottle"] == "Global"


def test_blocked_get_attachment_has_no_wbxml_answer(alice):
    block_all()
    assert phone("GetAttachment", version="14.1").status_code == 403


# --- quarantined: the notice mailbox --------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_folder_sync_gives_one_inbox(alice, version):
    quarantine_all()
    root = read(phone("FolderSync", folder_sync_request("0"), version=version))
    assert status_of(root) == status.FolderSync.SUCCESS
    changes = root.find("FolderHierarchy:Changes")
    assert find_text(changes, "FolderHierarchy:Count") == "1"
    [inbox] = changes.findall("FolderHierarchy:Add")
    assert find_text(inbox, "FolderHierarchy:Type") == "2"
    assert find_text(inbox, "FolderHierarchy:DisplayName") == "Inbox"
    key = find_text(root, "FolderHierarchy:SyncKey")

    again = read(phone("FolderSync", folder_sync_request(key), version=version))
    assert find_text(again, "FolderHierarchy:SyncKey") == key
    assert find_text(again, "FolderHierarchy:Changes", "FolderHierarchy:Count") == "0"
    foreign = read(phone("FolderSync", folder_sync_request("{real-server}7"), version=version))
    assert status_of(foreign) == status.FolderSync.INVALID_SYNC_KEY


def inbox_id(version):
    root = read(phone("FolderSync", folder_sync_request("0"), version=version))
    return find_text(
        root, "FolderHierarchy:Changes", "FolderHierarchy:Add", "FolderHierarchy:ServerId"
    )


def sync(version, key, folder=None, **options):
    folder = folder or notice.INBOX_ID
    root = read(
        phone("Sync", sync_request(folder, key, version=version, **options), version=version)
    )
    return root, root.find("AirSync:Collections").find("AirSync:Collection")


@pytest.mark.parametrize("version", VERSIONS)
def test_sync_delivers_the_notice_once(alice, version):
    quarantine_all()
    folder = inbox_id(version)
    _, primed = sync(version, "0", folder)
    assert find_text(primed, "AirSync:Status") == "1"
    assert primed.find("AirSync:Commands") is None
    assert (find_text(primed, "AirSync:Class") == "Email") == (version == "12.1")
    key1 = find_text(primed, "AirSync:SyncKey")

    _, delivered = sync(version, key1, folder)
    [add] = delivered.find("AirSync:Commands").findall("AirSync:Add")
    data = add.find("AirSync:ApplicationData")
    subject = find_text(data, "Email:Subject")
    assert "waiting for approval" in subject
    body = find_text(data, "AirSyncBase:Body", "AirSyncBase:Data")
    assert INSERT in body
    assert find_text(data, "Email:To") == "alice@contoso.com"
    key2 = find_text(delivered, "AirSync:SyncKey")
    assert key2 != key1

    _, quiet = sync(version, key2, folder)
    assert quiet.find("AirSync:Commands") is None
    assert find_text(quiet, "AirSync:SyncKey") == key2


def test_the_notice_is_the_user_mails_text(alice):
    quarantine_all()
    _, primed = sync("14.1", "0")
    _, delivered = sync("14.1", find_text(primed, "AirSync:SyncKey"))
    data = delivered.find("AirSync:Commands").find("AirSync:Add").find("AirSync:ApplicationData")
    device = MobileDevice.objects.select_related("mailbox", "access_rule").get()
    # The user mail's text, "Was this you?" links included (issued at the notice's
    # period start, so that the text stays the same between syncs: devices.links).
    context = owner_context(device, OrgSettings.load(), at=notice_issue_time())
    subject, text, _ = render(Kind.USER_QUARANTINED, context)
    assert "Was this you?" in text and "/links/" in text
    assert find_text(data, "Email:Subject") == subject
    assert find_text(data, "AirSyncBase:Body", "AirSyncBase:Data").strip() == text.strip()
    assert "&amp;" not in find_text(data, "AirSyncBase:Body", "AirSyncBase:Data")


def test_a_new_notice_text_reaches_a_phone_that_has_the_old_one(alice):
    quarantine_all()
    _, primed = sync("14.1", "0")
    _, delivered = sync("14.1", find_text(primed, "AirSync:SyncKey"))
    key2 = find_text(delivered, "AirSync:SyncKey")
    actions.set_org_settings(ADMIN, user_mail_insert="New words from IT.")
    _, changed = sync("14.1", key2)
    [change] = changed.find("AirSync:Commands").findall("AirSync:Change")
    assert "New words from IT." in find_text(
        change, "AirSync:ApplicationData", "AirSyncBase:Body", "AirSyncBase:Data"
    )


def test_the_notice_body_honours_truncation(alice):
    quarantine_all()
    _, primed = sync("14.1", "0")
    _, delivered = sync("14.1", find_text(primed, "AirSync:SyncKey"), truncation_size=20)
    body = delivered.find("AirSync:Commands").find("AirSync:Add").find("AirSync:ApplicationData")
    body = body.find("AirSyncBase:Body")
    assert find_text(body, "AirSyncBase:Truncated") == "1"
    assert len(find_text(body, "AirSyncBase:Data").encode()) <= 20
    assert int(find_text(body, "AirSyncBase:EstimatedDataSize")) > 20


@pytest.mark.parametrize("version", VERSIONS)
def test_sync_of_foreign_keys_and_folders(alice, version):
    quarantine_all()
    _, bad_key = sync(version, "{forged0000000000}1")
    assert find_text(bad_key, "AirSync:Status") == str(status.Sync.INVALID_SYNC_KEY)
    root = read(phone("Sync", sync_request("real-inbox-7", "42", version=version), version=version))
    assert status_of(root) == status.Sync.FOLDER_HIERARCHY_CHANGED
    empty = read(phone("Sync", b"", version=version))
    assert status_of(empty) == status.Sync.INCOMPLETE_REQUEST


@pytest.mark.parametrize("version", VERSIONS)
def test_get_item_estimate_counts_the_notice(alice, version):
    quarantine_all()
    _, primed = sync(version, "0")
    key1 = find_text(primed, "AirSync:SyncKey")

    def estimate(key):
        body = get_item_estimate_request(notice.INBOX_ID, key, version=version)
        response = read(phone("GetItemEstimate", body, version=version)).find(
            "GetItemEstimate:Response"
        )
        return find_text(response, "GetItemEstimate:Status"), find_text(
            response, "GetItemEstimate:Collection", "GetItemEstimate:Estimate"
        )

    assert estimate(key1) == ("1", "1")
    _, delivered = sync(version, key1)
    assert estimate(find_text(delivered, "AirSync:SyncKey")) == ("1", "0")
    assert estimate("0") == (str(status.GetItemEstimate.SYNC_STATE_NOT_PRIMED), None)


@pytest.mark.parametrize("version", VERSIONS)
def test_ping_waits_and_never_spins(alice, version):
    quarantine_all()
    held = read(phone("Ping", ping_request([notice.INBOX_ID]), version=version))
    assert status_of(held) == status.Ping.HEARTBEAT_EXPIRED  # after the hold, no changes
    short = read(phone("Ping", ping_request([notice.INBOX_ID], heartbeat=30), version=version))
    assert status_of(short) == status.Ping.HEARTBEAT_OUT_OF_RANGE
    assert find_text(short, "Ping:HeartbeatInterval") == "60"
    # The real server's folders: learn the notice mailbox's instead.
    foreign = read(phone("Ping", ping_request(["real-inbox-7"]), version=version))
    assert status_of(foreign) == status.Ping.FOLDER_HIERARCHY_SYNC_REQUIRED


def test_a_held_request_learns_of_the_approval_at_its_next_look(alice):
    quarantine_all()
    phone("FolderSync", folder_sync_request("0"))
    device = MobileDevice.objects.get()  # what the held request knows: Quarantined
    actions.allow_device(ADMIN, alice, device.device_id)
    with mock.patch("devices.gate.notice.time.sleep") as sleep:
        assert notice.NoticeMailbox(device, "14.1").released(60) is True
    sleep.assert_not_called()


def test_a_held_request_without_news_waits_out_its_time(alice, settings):
    quarantine_all()
    phone("FolderSync", folder_sync_request("0"))
    settings.ECP_NOTICE_POLL_SECONDS = 0.05
    mailbox = notice.NoticeMailbox(MobileDevice.objects.get(), "14.1")
    assert mailbox.released(0.2) is False


def test_a_held_ping_that_sees_the_approval_says_sync_the_folders(alice, settings):
    quarantine_all()
    phone("FolderSync", folder_sync_request("0"))
    with mock.patch.object(notice.NoticeMailbox, "released", return_value=True):
        root = read(phone("Ping", ping_request([notice.INBOX_ID])))
    assert status_of(root) == status.Ping.FOLDER_HIERARCHY_SYNC_REQUIRED


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("cmd", "code"),
    [
        ("ItemOperations", status.ItemOperations.OBJECT_NOT_FOUND),
        ("FolderCreate", status.FolderChange.SPECIAL_FOLDER),
        ("FolderDelete", status.FolderChange.SPECIAL_FOLDER),
        ("FolderUpdate", status.FolderChange.SPECIAL_FOLDER),
        ("ResolveRecipients", status.ResolveRecipients.SERVER_ERROR),
        ("Search", status.Search.SERVER_ERROR),
        ("ValidateCert", status.ValidateCert.PROTOCOL_ERROR),
    ],
)
def test_other_commands_get_their_own_error_status(alice, version, cmd, code):
    quarantine_all()
    root = read(phone(cmd, version=version))
    assert root.tag == RESPONSE_ROOTS[cmd]
    assert status_of(root) == code


@pytest.mark.parametrize("version", VERSIONS)
def test_meeting_response_and_move_items_fail_per_item(alice, version):
    quarantine_all()
    meeting = read(phone("MeetingResponse", version=version))
    assert find_text(meeting, "MeetingResponse:Result", "MeetingResponse:Status") == "2"
    move = read(phone("MoveItems", version=version))
    assert find_text(move, "Move:Response", "Move:Status") == "1"


def test_send_mail_fails_with_its_status_from_14_and_403_before(alice):
    quarantine_all()
    assert status_of(read(phone("SendMail", version="14.1"))) == 120
    assert phone("SendMail", version="12.1").status_code == 403
    assert phone("GetAttachment", version="12.1").status_code == 403


@pytest.mark.parametrize("cmd", ["Sync", "FolderSync", "GetItemEstimate", "Ping"])
@pytest.mark.parametrize(
    "body", [b"\x03\x01\x6a\x00\x45", b"not wbxml", b"\x03\x01\x6a\x00\x00\x0e\x45\x01"]
)
def test_a_malformed_body_is_400_never_500(alice, cmd, body):
    quarantine_all()
    response = phone(cmd, body)
    assert response.status_code == 400, response.content


def test_the_notice_mailbox_writes_no_rows(alice):
    quarantine_all()
    _, primed = sync("14.1", "0")
    counts = (AuditEvent.objects.count(), DeviceStateChange.objects.count())
    key = find_text(primed, "AirSync:SyncKey")
    for _ in range(5):
        _, collection = sync("14.1", key)
        key = find_text(collection, "AirSync:SyncKey")
        phone("FolderSync", folder_sync_request("0"))
    assert (AuditEvent.objects.count(), DeviceStateChange.objects.count()) == counts


def test_before_12_1_a_quarantined_phone_gets_403(alice):
    quarantine_all()
    assert phone("Sync", sync_request(notice.INBOX_ID), version="12.0").status_code == 403


# --- allowed, at the standalone endpoint, which serves no mailbox ----------------------


def allow_all():
    actions.set_org_settings(ADMIN, default_access_level="Allow")


def request_body(cmd, version):
    return {
        "FolderSync": lambda: folder_sync_request("0"),
        "Sync": lambda: sync_request("mail-inbox", "0", version=version),
        "GetItemEstimate": lambda: get_item_estimate_request("mail-inbox", "1", version=version),
        "Ping": lambda: ping_request(["mail-inbox"], 480),
    }.get(cmd, lambda: b"")()


SERVER_ERRORS = [
    ("FolderSync", status.FolderSync.SERVER_ERROR),
    ("Sync", status.Sync.SERVER_ERROR),
    ("Ping", status.Ping.SERVER_ERROR),
    ("FolderCreate", status.FolderChange.SERVER_ERROR),
    ("FolderDelete", status.FolderChange.SERVER_ERROR),
    ("FolderUpdate", status.FolderChange.SERVER_ERROR),
    ("ItemOperations", status.ItemOperations.SERVER_ERROR),
    ("ResolveRecipients", status.ResolveRecipients.SERVER_ERROR),
    ("Search", status.Search.SERVER_ERROR),
]
WITHOUT_A_SERVER_ERROR = [
    "GetItemEstimate",
    "MoveItems",
    "MeetingResponse",
    "SendMail",
    "SmartReply",
    "SmartForward",
    "ValidateCert",
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("cmd", "code"), SERVER_ERRORS)
def test_allowed_standalone_gets_its_commands_server_error(alice, version, cmd, code):
    allow_all()
    response = phone(cmd, request_body(cmd, version), version=version)
    root = read(response)
    assert root.tag == RESPONSE_ROOTS[cmd]
    assert status_of(root) == code
    assert (response["X-EAS-Access-State"], response["X-EAS-Access-Reason"]) == (
        "Allowed",
        "Global",
    )
    assert MobileDevice.objects.get().access_state == "Allowed"


@pytest.mark.parametrize("version", MODERN)
@pytest.mark.parametrize("cmd", WITHOUT_A_SERVER_ERROR)
def test_allowed_standalone_from_14_others_get_retry_later(alice, version, cmd):
    allow_all()
    root = read(phone(cmd, request_body(cmd, version), version=version))
    assert root.tag == RESPONSE_ROOTS[cmd]
    assert status_of(root) == status.Common.SERVER_ERROR_RETRY_LATER == 111


@pytest.mark.parametrize("cmd", [*WITHOUT_A_SERVER_ERROR, "GetAttachment"])
def test_allowed_standalone_before_14_without_a_status_is_503(alice, cmd):
    allow_all()
    response = phone(cmd, version="12.1")
    assert response.status_code == 503
    assert response["Retry-After"] == "3600"
    assert response["Content-Type"].startswith("text/plain")
    assert b"serves no mailbox" in response.content
    assert response["X-EAS-Access-State"] == "Allowed"


@pytest.mark.parametrize("version", MODERN)
def test_allowed_standalone_get_attachment_is_503(alice, version):
    allow_all()
    response = phone("GetAttachment", version=version)
    assert (response.status_code, response["Retry-After"]) == (503, "3600")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("cmd", [*COMMANDS, "FolderCreate", "SmartReply", "GetAttachment"])
def test_the_standalone_endpoint_never_sends_an_empty_200(alice, version, cmd):
    allow_all()
    response = phone(cmd, request_body(cmd, version), version=version)
    assert response.content, f"{cmd} {version}: {response.status_code} with no body"
    if response.status_code == 200:
        read(response)  # WBXML that ECP and libwbxml both read


def test_behind_nginx_an_allowed_device_still_passes(alice):
    allow_all()
    token = base64.b64encode(b"alice:alice-secret").decode()
    response = Client().get(
        "/eas/auth",
        headers={
            "Authorization": f"Basic {token}",
            "MS-ASProtocolVersion": "14.1",
            "User-Agent": IPHONE,
            "X-Original-URI": f"{GATE}?Cmd=FolderSync&User=alice&DeviceId=NGINX2&DeviceType=iPhone",
            "X-Original-Method": "POST",
        },
    )
    assert (response.status_code, response.content) == (200, b"")
    assert response["X-EAS-Access-State"] == "Allowed"


# --- Provision and Settings at the standalone endpoint ----------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("level", ["Allow", "Quarantine"])
def test_provision_is_a_real_two_step_provision(alice, version, level):
    actions.set_org_settings(ADMIN, default_access_level=level, discovery_window_minutes=0)
    first = read(phone("Provision", provision_request(), version=version))
    assert status_of(first) == status.Provision.SUCCESS
    policy = first.find("Provision:Policies").find("Provision:Policy")
    assert find_text(policy, "Provision:Status") == "1"
    assert policy.find("Provision:Data").find("Provision:EASProvisionDoc") is not None
    temporary = int(find_text(policy, "Provision:PolicyKey"))
    ack = read(phone("Provision", provision_request(temporary), version=version))
    final = find_text(ack, "Provision:Policies", "Provision:Policy", "Provision:PolicyKey")
    assert int(final) not in (0, temporary)


def test_settings_is_a_real_settings_answer(alice):
    quarantine_all()
    body = build_device_information_body("Settings", {"model": "iPhone14C5"})
    root = read(phone("Settings", body, version="12.1"))
    assert status_of(root) == status.Settings.SUCCESS
    assert find_text(root, "Settings:DeviceInformation", "Settings:Status") == "1"


# --- devices that never reported themselves -------------------------------------------


def test_a_model_in_the_user_agent_lets_a_rule_decide_at_once(alice):
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")  # window 15 min
    actions.create_rule(
        ADMIN, characteristic="DeviceModel", query_string="iPhone14*", access_level="Allow"
    )
    response = phone("FolderSync", folder_sync_request("0"), user_agent=IPHONE)
    assert (response["X-EAS-Access-State"], response["X-EAS-Access-Reason"]) == (
        "Allowed",
        "DeviceRule",
    )
    assert MobileDevice.objects.get().device_model == "iPhone14C5"


@pytest.mark.parametrize("user_agent", ["SAMSUNG-SM-G991B/101.110001", "Android-SM-A536B/13"])
def test_android_models_from_the_user_agent(alice, user_agent):
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")
    actions.create_rule(
        ADMIN, characteristic="DeviceModel", query_string="SM-*", access_level="Block"
    )
    response = phone("Sync", user_agent=user_agent)
    assert response["X-EAS-Access-State"] == "Blocked"


@pytest.mark.parametrize("version", MODERN)
def test_without_a_model_it_is_asked_to_provision_with_142(alice, version):
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")
    root = read(phone("FolderSync", folder_sync_request("0"), user_agent=NO_MODEL, version=version))
    assert status_of(root) == status.Common.DEVICE_NOT_PROVISIONED == 142


def test_before_14_it_is_asked_to_provision_with_449(alice):
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")
    response = phone("Sync", user_agent=NO_MODEL, version="12.1")
    assert (response.status_code, response["X-EAS-Access-State"]) == (449, "DeviceDiscovery")


def test_after_provisioning_it_is_not_asked_again(alice):
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")
    phone("Sync", user_agent=NO_MODEL, version="12.1")
    phone("Provision", provision_request(), user_agent=NO_MODEL, version="12.1")
    # 12.1 sends no DeviceInformation in Provision: still in discovery, but it did provision.
    root = read(phone("FolderSync", folder_sync_request("0"), user_agent=NO_MODEL, version="12.1"))
    assert status_of(root) == status.FolderSync.SUCCESS
    assert MobileDevice.objects.get().access_state == "DeviceDiscovery"


# --- the endpoint itself ----------------------------------------------------------------


def test_the_activesync_path_is_case_insensitive(alice):
    block_all()
    for path in ("/microsoft-server-activesync", "/MICROSOFT-SERVER-ACTIVESYNC", GATE + "/"):
        response = phone("FolderSync", path=path)
        assert response["X-EAS-Access-State"] == "Blocked", path


def test_a_rejected_host_is_a_server_configuration_error(alice, caplog):
    token = base64.b64encode(b"alice:alice-secret").decode()
    with caplog.at_level(logging.ERROR, logger="ecp.gate"):
        response = Client().post(
            GATE,
            b"",
            content_type=WBXML,
            headers={"Authorization": f"Basic {token}", "Host": "mail.unknown.example"},
            QUERY_STRING="Cmd=FolderSync&User=alice&DeviceId=X1&DeviceType=iPhone",
        )
    assert response.status_code == 500
    assert not response.has_header("Retry-After")
    assert b"not a valid ActiveSync request" not in response.content
    assert "server configuration error" in caplog.text
    assert "mail.unknown.example" in caplog.text
    assert not MobileDevice.objects.exists()


def test_nginx_hands_denied_requests_to_eas_answer(alice):
    quarantine_all()
    token = base64.b64encode(b"alice:alice-secret").decode()
    response = Client().post(
        "/eas/answer",
        folder_sync_request("0"),
        content_type=WBXML,
        headers={
            "Authorization": f"Basic {token}",
            "MS-ASProtocolVersion": "14.1",
            "User-Agent": IPHONE,
            "X-Original-URI": f"{GATE}?Cmd=FolderSync&User=alice&DeviceId=NGINX1&DeviceType=iPhone",
            "X-Original-Method": "POST",
        },
    )
    root = read(response)
    assert find_text(root, "FolderHierarchy:Changes", "FolderHierarchy:Count") == "1"
