"""The import page (issue 17, point 10): Exchange's CSV exports checked line by line in a
dry run that writes nothing, then imported by a worker with a progress bar; bad files get
clear errors and change nothing. And the percentage on long rule-change jobs."""

import html
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client

from devices import progress
from devices.models import (
    AccessState,
    AuditEvent,
    ImportJob,
    Mailbox,
    MailboxDeviceId,
    MobileDevice,
    RuleChangeJob,
)

MAILBOXES = (
    "#TYPE Microsoft.Exchange.Data.Directory.Management.CASMailbox\r\n"
    '"SamAccountName","PrimarySmtpAddress","DisplayName","ActiveSyncEnabled",'
    '"ActiveSyncAllowedDeviceIDs","ActiveSyncBlockedDeviceIDs"\r\n'
    '"dora","dora@example.org","Dora Diaz","True","DORAPHONE1",""\r\n'
    '"alice","alice@example.org","Alice A.","False","",""\r\n'
)
DEVICES = (
    '"UserDisplayName","DeviceId","DeviceType","DeviceModel","DeviceAccessState",'
    '"DeviceAccessStateReason"\r\n'
    '"bob","BOBNEW1","iPhone","iPhone15C2","Allowed","Individual"\r\n'
    '"alice","ALICEIPHONE1","iPhone","iPhone15,2","Quarantined","Global"\r\n'
)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin(world):
    return _client(world.org)


def _text(response) -> str:
    words = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", html.unescape(words))


def _check(client, text, kind="mailboxes", name="export.csv", **extra):
    upload = SimpleUploadedFile(name, text.encode("utf-8-sig"), content_type="text/csv")
    return client.post("/import/", {"kind": kind, "file": upload, **extra})


def _lines(response) -> list[tuple[str, str]]:
    return [(o.name, o.outcome) for o in response.context["preview"].lines]


def _snapshot():
    return (
        sorted(Mailbox.objects.values_list("alias", "display_name", "activesync_enabled")),
        sorted(MobileDevice.objects.values_list("device_id", "access_state")),
        MailboxDeviceId.objects.count(),
        AuditEvent.objects.count(),
    )


def test_only_organization_management_imports(world):
    assert _client(world.helpdesk).get("/import/").status_code == 403
    assert _client(world.alice).get("/import/").status_code in (302, 403)
    page = _text(_client(world.org).get("/import/"))
    assert "Check the file (dry run)" in page
    assert 'href="/import/"' in _client(world.org).get("/mailboxes/").content.decode()
    assert 'href="/import/"' not in _client(world.helpdesk).get("/mailboxes/").content.decode()


def test_the_dry_run_says_what_each_line_would_do_and_writes_nothing(world, admin):
    before = _snapshot()
    response = _check(admin, MAILBOXES)
    assert response.status_code == 200
    assert _lines(response) == [("dora", "create"), ("alice", "update")]
    page = _text(response)
    assert "Dry run of export.csv: nothing was written yet" in page
    assert "1 to create 1 to update 0 refused" in page
    # alice's ActiveSync goes off: her two quarantined devices would be blocked.
    assert "Importing blocks 2 quarantined devices, and adds 1 allowed" in page
    assert "Import 2 mailboxes" in page
    assert _snapshot() == before
    job = ImportJob.objects.get()
    assert (job.status, job.kind, job.file_name) == ("checked", "mailboxes", "export.csv")
    assert [line for line, _ in job.rows] == [3, 4]


def test_starting_the_checked_import_runs_it_as_a_job(
    world, admin, django_capture_on_commit_callbacks
):
    _check(admin, MAILBOXES)
    job = ImportJob.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/import/{job.pk}/start")
    assert response.status_code == 302 and response["Location"] == f"/import/{job.pk}/"
    job.refresh_from_db()
    assert (job.status, job.progress) == ("done", 100)
    assert (job.rows, job.lines) == ([], 2)  # the file's data is not kept once imported
    assert Mailbox.objects.get(alias="dora").display_name == "Dora Diaz"
    assert MobileDevice.objects.get(device_id="ALICEIPHONE1").access_state == AccessState.BLOCKED
    page = _text(admin.get(f"/import/{job.pk}/"))
    assert "Imported 2 mailboxes (1 new, 1 updated)" in page
    assert admin.get(f"/import/{job.pk}.json").json()["progress"] == 100
    # Started once: a second start (another tab) does not import it again.
    events = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(f"/import/{job.pk}/start")
    assert AuditEvent.objects.count() == events


def test_devices_show_the_state_before_and_after(world, admin):
    before = _snapshot()
    response = _check(admin, DEVICES, kind="devices")
    preview = response.context["preview"]
    assert [
        (o.name, o.mailbox, o.outcome, o.state_before, o.state_after) for o in preview.lines
    ] == [
        ("BOBNEW1", "bob", "create", "", AccessState.ALLOWED),
        ("ALICEIPHONE1", "alice", "update", AccessState.QUARANTINED, AccessState.QUARANTINED),
    ]
    assert _snapshot() == before


def test_bad_lines_are_refused_with_their_line_and_nothing_can_be_imported(world, admin):
    bad = MAILBOXES + '"dora","other@example.org","Dora again","maybe","",""\r\n'
    before = _snapshot()
    response = _check(admin, bad)
    preview = response.context["preview"]
    assert [(o.line, o.outcome) for o in preview.lines] == [
        (3, "create"),
        (4, "update"),
        (5, "reject"),
    ]
    assert "ActiveSyncEnabled is 'maybe'" in preview.lines[2].problem
    page = _text(response)
    assert "nothing can be imported" in page and "1 line refused" in page
    assert "/start" not in response.content.decode()
    assert _snapshot() == before
    # Started anyway (a forged post): the run checks the rows again and imports none.
    job = ImportJob.objects.get()
    client_job = admin.post(f"/import/{job.pk}/start")
    assert client_job.status_code == 302
    from devices import actions

    actions.run_import_job(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "line 5" in job.error
    assert _snapshot() == before


def test_a_duplicate_across_lines_is_refused_on_its_line(world, admin):
    bad = MAILBOXES + '"dora","dora@example.org","Dora twice","True","",""\r\n'
    preview = _check(admin, bad).context["preview"]
    assert preview.lines[2].outcome == "reject"
    assert "also on line 3" in preview.lines[2].problem


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", "The submitted file is empty."),
        (b"\xff\xfe\x00\xd8", "cannot be read"),
        (b'"a","b"\r\n"1","2","3"\r\n', "cannot be read: line 2: 3 values for 2 columns"),
    ],
)
def test_a_file_that_is_no_csv_gets_a_clear_error_at_its_field(world, admin, content, error):
    before = _snapshot()
    upload = SimpleUploadedFile("x.csv", content, content_type="text/csv")
    response = admin.post("/import/", {"kind": "mailboxes", "file": upload})
    assert response.status_code == 200
    assert error in " ".join(response.context["form"].errors["file"])
    assert "ecp-error-summary" in response.content.decode()
    assert _snapshot() == before and not ImportJob.objects.exists()


def test_a_file_without_the_columns_says_which_it_has(world, admin):
    response = _check(admin, '"Name","Mail"\r\n"x","x@example.org"\r\n')
    assert "The file has no PrimarySmtpAddress column; it has: mail, name." in _text(response)
    assert "/start" not in response.content.decode()


def test_no_file_and_no_kind(world, admin):
    response = admin.post("/import/", {})
    errors = response.context["form"].errors
    assert set(errors) == {"kind", "file"}


def test_the_job_page_shows_a_percentage_while_running(world, admin):
    job = ImportJob.objects.create(
        kind="mailboxes",
        file_name="big.csv",
        rows=[[2, {}]] * 3,
        lines=3,
        user=world.org,
        user_name="orgadmin",
        source="ui",
        status="running",
        progress=42,
    )
    response = admin.get(f"/import/{job.pk}/")
    content = response.content.decode()
    assert 'role="progressbar"' in content and 'aria-valuenow="42"' in content
    assert "42 %" in content
    assert admin.get(f"/import/{job.pk}.json").json()["progress"] == 42
    assert _client(world.helpdesk).get(f"/import/{job.pk}/").status_code == 403


def test_a_rule_change_job_shows_its_percentage(world, admin):
    job = RuleChangeJob.objects.create(
        kind="create",
        params={"characteristic": "DeviceType", "query_string": "iPhone", "access_level": "Allow"},
        user=world.org,
        user_name="orgadmin",
        source="ui",
        status="running",
        progress=65,
        devices_total=100_000,
    )
    content = admin.get(f"/jobs/{job.pk}/").content.decode()
    assert 'aria-valuenow="65"' in content and "65 %" in content
    assert admin.get(f"/jobs/{job.pk}.json").json()["progress"] == 65


def test_progress_is_seen_from_outside_the_running_transaction(transactional_db):
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer: progress is written between transactions only")
    job = RuleChangeJob.objects.create(kind="create", user_name="x", source="ui")

    def seen_by_another_connection():
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT progress FROM devices_rulechangejob WHERE id = %s", [job.pk])
                return cursor.fetchone()[0]
        finally:
            other.close()

    with progress.reporting(RuleChangeJob, job.pk), transaction.atomic():
        MobileDevice.objects.update(imei="")  # the job's own transaction holds its writes
        with progress.span(0.5, 1.0):
            progress.step(1, 2)  # half of the second half
            assert seen_by_another_connection() == 75
        assert seen_by_another_connection() == 99  # 100 only once the job is marked done
    assert seen_by_another_connection() == 99


def test_outside_a_job_progress_does_nothing(world):
    progress.step(1, 2)
    with progress.span(0, 1):
        progress.step(2, 2)


def test_the_import_page_and_its_error_summary_in_german(world, admin):
    german = {"Accept-Language": "de"}
    page = _text(admin.get("/import/", headers=german))
    assert "Postfächer und Geräte aus Exchange importieren" in page
    assert "Inhalt der Datei" in page and "CSV-Datei" in page
    assert "Importierte Geräte zulassen" in page
    assert "Datei prüfen (Testlauf)" in page
    assert "Import mailboxes and devices" not in page and "dry run" not in page

    page = _text(admin.post("/import/", {}, headers=german))
    assert "Es gibt 2 Probleme: es wurde nichts geprüft oder importiert" in page
    assert "There are 2 problems" not in page and "nothing was checked" not in page

    upload = SimpleUploadedFile("export.csv", MAILBOXES.encode(), content_type="text/csv")
    page = _text(admin.post("/import/", {"kind": "mailboxes", "file": upload}, headers=german))
    assert "Testlauf von export.csv: Es wurde noch nichts geschrieben" in page
    assert "1 neu anzulegen 1 zu aktualisieren 0 abgelehnt" in page
    assert "Zeile" in page and "Ergebnis" in page and "würde angelegt" in page
