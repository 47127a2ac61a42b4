"""Issue 17 in the browser, at 1366 px and at 390 px (Debian's Chromium): previews that name
the devices (1), the mail's link (2), confirmations and Undo (3, also
test_browser_confirmations), mails and model names on a phone (4), errors at their fields
(5), touch targets (7), people's words (8), the filtered count (9), page size, sign-in name
and the import page with its progress bar (10). Point 6 (time zones) is tested elsewhere."""

import re
from pathlib import Path

import pytest
from django.core import mail
from django.test import override_settings

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture's need_service() reports it
    expect = None

from devices import actions
from devices.audit import Actor
from devices.models import AccessState, AuditSource, ImportJob, Mailbox, MobileDevice, RuleChangeJob
from notifications.models import Kind, Notification
from notifications.rendering import render

from .conftest import DESKTOP, PHONE, sign_in

pytestmark = pytest.mark.browser

WIDTHS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366px", "390px"])


def _admin(demo, new_page, viewport):
    page = new_page(viewport)
    sign_in(page, "admin", demo.password)
    return page


def _no_sideways_scroll(page, viewport):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{page.url} scrolls sideways: {width}px"


def _box(locator):
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert box is not None
    return box


# -- 1: previews name the devices ------------------------------------------------------


@WIDTHS
def test_1_the_rule_preview_names_the_devices_with_links_and_a_csv(demo, new_page, viewport):
    page = _admin(demo, new_page, viewport)
    page.goto("/rules/new")
    page.get_by_label("Characteristic").select_option("DeviceType")
    page.get_by_label("Query string").fill("iPad")
    page.get_by_label("Access level").select_option("Block")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#rule-preview")
    ipads = [d for d in demo.quarantined if d.device_type == "iPad"]
    expect(preview).to_contain_text(f"Saving this rule blocks {len(ipads)} quarantined device")
    rows = page.locator("#preview-devices tbody tr")
    expect(rows).to_have_count(len(ipads))
    with page.expect_download() as download:
        page.locator("#preview-csv").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + len(ipads) and lines[0].startswith("mailbox,")
    _no_sideways_scroll(page, viewport)
    rows.first.get_by_role("link").nth(1).click()
    expect(page).to_have_url(re.compile(r"/devices/\d+/$"))
    assert MobileDevice.objects.filter(device_type="iPad", access_state="Blocked").count() == 0


@WIDTHS
def test_1_deleting_a_policy_previews_and_asks(demo, new_page, viewport):
    admin = Actor(user=demo.admin, source=AuditSource.UI)
    policy = actions.create_policy(
        admin, name="Everyone allowed", default_access_level="Allow", domains=["example.com"]
    ).obj
    allowed = MobileDevice.objects.filter(access_state=AccessState.ALLOWED).count()
    page = _admin(demo, new_page, viewport)
    page.goto(f"/policies/{policy.pk}/delete")
    preview = page.locator("#policy-preview")
    expect(preview).to_contain_text("Deleting it puts")
    expect(
        page.locator("#preview-devices tbody tr").first.get_by_role("link").first
    ).to_be_visible()
    total = int(re.search(r"\((\d+) devices? of", preview.inner_text()).group(1))
    questions = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Delete the policy").click()
    assert questions and questions[0].startswith("Delete the access policy Everyone allowed?")
    assert f"{total} device" in questions[0]
    assert MobileDevice.objects.filter(access_state=AccessState.ALLOWED).count() == allowed
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete the policy").click()
    expect(page.locator("#messages")).to_contain_text("Deleted the access policy Everyone allowed")
    _no_sideways_scroll(page, viewport)


# -- 2: the admin mail's link opens the device's page on this server ----------------------


@WIDTHS
def test_2_the_admin_mails_link_leads_to_the_device_page(demo, new_page, viewport, live_server):
    box = Mailbox.objects.get(alias="anna.berg")
    with override_settings(ECP_BASE_URL=live_server.url):
        mail.outbox.clear()
        device = actions.record_contact(
            Actor(source=AuditSource.GATE),
            box,
            actions.Contact(
                device_id="ApplNEWPHONE9",
                device_type="iPhone",
                user_agent="Apple-iPhone15C2/2104.136",
                info={"model": "iPhone15C2", "os": "iOS 17.4"},
            ),
        )
        assert device.access_state == AccessState.QUARANTINED
        row = Notification.objects.filter(kind=Kind.ADMIN_QUARANTINED).latest("id")
        html = render(row.kind, row.context)[2]
    link = re.search(rf'href="({re.escape(live_server.url)}/devices/\d+/[^"]*)"', html).group(1)
    page = new_page(viewport)
    page.goto(link.replace("&amp;", "&"))
    page.get_by_label("Username").fill("helpdesk")
    page.get_by_label("Password").fill(demo.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/devices/{device.pk}/"))
    expect(page.locator("main")).to_contain_text("ApplNEWPHONE9")


# -- 4: mails read on a phone, with marketing names ----------------------------------------


@WIDTHS
def test_4_the_mails_fit_the_screen_and_name_the_model(demo, new_page, viewport):
    box = Mailbox.objects.get(alias="anna.berg")
    device = actions.record_contact(
        Actor(source=AuditSource.GATE),
        box,
        actions.Contact(
            device_id="ApplMAILTEST1",
            device_type="iPhone",
            user_agent="Apple-iPhone15C2/2104.136",
            info={"model": "iPhone15C2", "os": "iOS 17.4"},
        ),
    )
    actions.allow_device(Actor(user=demo.helpdesk, source=AuditSource.UI), box, device.device_id)
    page = new_page(viewport, mobile=viewport is PHONE)
    shown = {}
    # A page loaded by navigation, as a mail app's web view shows it (set_content would
    # keep about:blank's viewport).
    page.route(
        "https://mail.test/**",
        lambda route: route.fulfill(body=shown["html"], content_type="text/html; charset=utf-8"),
    )

    def show(html):
        shown["html"] = html
        page.goto("https://mail.test/message")

    for kind in (Kind.USER_QUARANTINED, Kind.ADMIN_QUARANTINED, Kind.USER_APPROVED):
        row = Notification.objects.filter(kind=kind).latest("id")
        subject, _, html = render(row.kind, row.context)
        show(html)
        assert "iPhone 14 Pro" in subject or kind == Kind.USER_APPROVED, subject
        expect(page.locator("body")).to_contain_text("iPhone 14 Pro")
        # The viewport meta makes the phone lay the mail out at its own width, 16 px text.
        assert page.evaluate("window.innerWidth") == viewport["width"]
        _no_sideways_scroll(page, viewport)
        size = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        assert size >= 16, (kind, size)
    show(html.replace('<meta name="viewport"', '<meta name="x-none"'))
    if viewport is PHONE:  # without it the phone would shrink a 980 px page: the test can fail
        assert page.evaluate("window.innerWidth") > viewport["width"]


@WIDTHS
def test_4_the_pages_show_marketing_names(demo, new_page, viewport):
    page = _admin(demo, new_page, viewport)
    page.goto("/devices/quarantine/")
    expect(page.locator("#device-table")).to_contain_text("iPad")
    iphone = MobileDevice.objects.filter(device_model="iPhone15C2").first()
    page.goto(f"/devices/{iphone.pk}/")
    expect(page.locator("main")).to_contain_text("iPhone 14 Pro")


# -- 5: errors at their fields, summarised at the top, input kept --------------------------


def _assert_error_beside(page, field, text):
    expect(field).to_have_class(re.compile(r"\bis-invalid\b"))
    error = page.locator(f"#{field.get_attribute('aria-describedby').split()[0]}")
    expect(error).to_contain_text(text)
    f, e = _box(field), _box(error)
    assert 0 <= e["y"] - (f["y"] + f["height"]) < 40, (f, e)  # right under the field


@WIDTHS
def test_5_a_bad_device_id_is_reported_at_its_field_and_kept(demo, new_page, viewport):
    page = _admin(demo, new_page, viewport)
    box = Mailbox.objects.get(alias="anna.berg")
    page.goto(f"/mailboxes/{box.pk}/")
    field = page.get_by_label("DeviceId")
    field.fill("bad id")
    page.get_by_role("button", name="Add", exact=True).click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("There is a problem: nothing was changed")
    expect(summary).to_be_in_viewport()
    field = page.get_by_label("DeviceId")
    expect(field).to_have_value("bad id")
    _assert_error_beside(page, field, "A DeviceId has no spaces.")
    summary.get_by_role("link", name=re.compile("DeviceId")).click()
    expect(field).to_be_focused()
    expect(field).to_be_in_viewport()
    assert not box.device_ids.filter(device_id__contains=" ").exists()
    _no_sideways_scroll(page, viewport)


@WIDTHS
def test_5_settings_summarise_their_errors_on_every_width(demo, new_page, viewport):
    page = _admin(demo, new_page, viewport)
    page.goto("/settings/")
    page.get_by_label("Admin mail recipients").fill("helpdesk@example.com\nnot-an-address")
    page.get_by_role("button", name="Save settings").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_be_in_viewport()
    expect(summary).to_contain_text("Not an e-mail address: not-an-address")
    field = page.get_by_label("Admin mail recipients")
    expect(field).to_have_value("helpdesk@example.com\nnot-an-address")
    summary.get_by_role("link").first.click()
    expect(field).to_be_focused()
    _no_sideways_scroll(page, viewport)


@WIDTHS
def test_5_sign_in_errors(demo, new_page, viewport):
    page = new_page(viewport)
    page.goto("/accounts/login/")
    expect(page.locator("main")).to_contain_text("its alias (jdoe), not the mail address")
    page.get_by_label("Username").fill("helpdesk")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.get_by_label("Username")).to_have_value("helpdesk")


# -- 7: touch targets on a phone, a stable button column, the count in the bar -------------


def test_7_phone_targets_are_at_least_44_px(demo, new_page):
    page = new_page(PHONE)
    sign_in(page, "admin", demo.password)
    page.goto("/devices/quarantine/")
    targets = [
        page.locator(".navbar-toggler"),
        page.locator("#nav-quarantined-collapsed"),
        page.locator("label[for=select-all]"),
    ]
    first = demo.quarantined[0]
    row = page.locator(f"#device-{first.pk}")
    targets += [
        row.locator(".ecp-hit"),
        row.get_by_role("button", name="Allow"),
        row.get_by_role("button", name="Block"),
        row.get_by_role("link", name="Create a rule for similar devices"),
    ]
    for target in targets:
        box = _box(target)
        assert box["width"] >= 44 and box["height"] >= 44, (target, box)
    # The whole 44 px square selects the row, not only the 24 px box inside it.
    hit = _box(row.locator(".ecp-hit"))
    page.mouse.click(hit["x"] + 3, hit["y"] + 3)
    expect(page.locator(f"#select-{first.pk}")).to_be_checked()
    expect(page.locator("#selected-count")).to_have_text("1 selected")
    # The quarantine count is in the bar while the menu is collapsed.
    expect(page.locator("#main-nav")).to_be_hidden()
    n = MobileDevice.objects.filter(access_state=AccessState.QUARANTINED).count()
    expect(page.locator("#nav-quarantined-collapsed")).to_have_text(f"Quarantine {n}")
    page.goto("/audit/?per_page=25")  # more than 25 events: pages
    assert page.locator(".page-link").count() >= 1
    for link in page.locator(".page-link").all():
        box = _box(link)
        assert box["width"] >= 44 and box["height"] >= 44, (link, box)


def test_7_desktop_shows_the_count_in_the_menu_only(demo, new_page):
    page = new_page(DESKTOP)
    sign_in(page, "helpdesk", demo.password)
    expect(page.locator("#nav-quarantined")).to_be_visible()
    expect(page.locator("#nav-quarantined-collapsed")).to_be_hidden()


@WIDTHS
def test_7_allow_and_block_keep_their_column_from_row_to_row(demo, new_page, viewport):
    page = new_page(viewport)
    sign_in(page, "helpdesk", demo.password)
    page.goto("/")
    items = page.locator("#main .ecp-waiting")
    assert items.count() >= 3
    allow_x = {round(_box(items.nth(i).get_by_role("button", name="Allow"))["x"]) for i in range(3)}
    block_x = {round(_box(items.nth(i).get_by_role("button", name="Block"))["x"]) for i in range(3)}
    assert len(allow_x) == 1 and len(block_x) == 1, (allow_x, block_x)
    if viewport is PHONE:
        assert _box(items.first.get_by_role("button", name="Allow"))["height"] >= 44
    # Devices in every state: Block stays in the second place even where Allow is missing.
    page.goto("/devices/?sort=state")
    rows = page.locator("#device-table tbody tr")
    lefts = {}
    for i in range(rows.count()):
        actions_cell = rows.nth(i).locator(".ecp-row-actions")
        block = actions_cell.get_by_role("button", name="Block")
        if block.count():
            offset = _box(block)["x"] - _box(actions_cell)["x"]
            lefts[round(offset)] = lefts.get(round(offset), 0) + 1
    assert len(lefts) == 1, lefts
    _no_sideways_scroll(page, viewport)


# -- 8 and 9: people's words, the filtered count -------------------------------------------


@WIDTHS
def test_8_the_audit_log_and_my_devices_speak_in_words(demo, new_page, viewport):
    page = _admin(demo, new_page, viewport)
    page.goto("/audit/?action=device.allow")
    expect(page.locator("main")).to_contain_text("Device allowed")
    user = new_page(viewport)
    sign_in(user, "anna.berg", demo.password)
    text = user.locator("main").inner_text()
    assert "Quarantined" in text or "waiting" in text.lower()
    assert "DeviceRule" not in text and "Global" not in text


@WIDTHS
def test_9_a_filtered_quarantine_list_says_of_how_many(demo, new_page, viewport):
    page = new_page(viewport)
    sign_in(page, "helpdesk", demo.password)
    page.goto("/devices/quarantine/?q=no-such-device")
    n = len(demo.quarantined)
    expect(page.locator("main")).to_contain_text(f"0 of {n} waiting match the filters")


# -- 10: page size, the import page, percentages -------------------------------------------


@WIDTHS
def test_10_a_bad_page_size_is_said_so(demo, new_page, viewport):
    page = new_page(viewport)
    sign_in(page, "helpdesk", demo.password)
    page.goto("/devices/?per_page=abc")
    expect(page.locator("#messages")).to_contain_text("abc")


MAILBOX_CSV = (
    '"SamAccountName","PrimarySmtpAddress","DisplayName","ActiveSyncEnabled",'
    '"ActiveSyncAllowedDeviceIDs","ActiveSyncBlockedDeviceIDs"\r\n'
    '"ivan.petrov","ivan.petrov@example.com","Ivan Petrov","True","IVANPHONE1",""\r\n'
    '"hannes.vogel","hannes.vogel@example.com","Hannes Vogel","True","",""\r\n'
)


@WIDTHS
def test_10_import_checks_first_then_imports(demo, new_page, viewport):
    page = _admin(demo, new_page, viewport)
    page.goto("/mailboxes/")
    page.get_by_role("link", name="Import from Exchange (CSV)").click()
    page.get_by_label("Mailboxes: Get-CASMailbox").check()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "mailboxes.csv", "mimeType": "text/csv", "buffer": MAILBOX_CSV.encode()}]
    )
    page.get_by_role("button", name="Check the file (dry run)").click()
    check = page.locator("#import-check")
    expect(check).to_contain_text("nothing was written yet")
    expect(page.locator("#import-counts")).to_contain_text("1 to create")
    lines = page.locator("#import-lines tbody tr")
    expect(lines).to_have_count(2)
    expect(lines.nth(0)).to_contain_text("created")
    expect(lines.nth(1)).to_contain_text("updated")
    assert not Mailbox.objects.filter(alias="ivan.petrov").exists()
    _no_sideways_scroll(page, viewport)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Import 2 mailboxes").click()
    expect(page.locator("#job-status")).to_have_text("Done")
    expect(page.locator("main")).to_contain_text("Imported 2 mailboxes (1 new, 1 updated)")
    assert Mailbox.objects.get(alias="ivan.petrov").display_name == "Ivan Petrov"
    assert Mailbox.objects.get(alias="hannes.vogel").activesync_enabled


@WIDTHS
def test_10_a_bad_file_gets_a_clear_error_and_changes_nothing(demo, new_page, viewport):
    page = _admin(demo, new_page, viewport)
    page.goto("/import/")
    bad = MAILBOX_CSV + '"ivan.petrov","ivan@elsewhere.example","Ivan","perhaps","",""\r\n'
    page.get_by_label("Mailboxes: Get-CASMailbox").check()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad.encode()}]
    )
    page.get_by_role("button", name="Check the file (dry run)").click()
    expect(page.locator("#import-refused")).to_contain_text("1 line refused")
    refused = page.locator("#import-lines tr[data-line='4']")
    expect(refused).to_contain_text("ActiveSyncEnabled is 'perhaps'")
    expect(page.get_by_role("button", name=re.compile("^Import "))).to_have_count(0)
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "x.csv", "mimeType": "text/csv", "buffer": b'"a","b"\n"1","2","3"\n'}]
    )
    page.get_by_role("button", name="Check the file (dry run)").click()
    expect(page.locator("#error-summary")).to_contain_text("3 values for 2 columns")
    assert not Mailbox.objects.filter(alias="ivan.petrov").exists()


@WIDTHS
def test_10_long_jobs_show_a_percentage(demo, new_page, viewport):
    job = ImportJob.objects.create(
        kind="devices",
        file_name="devices.csv",
        rows=[],
        lines=40_000,
        user=demo.admin,
        user_name="admin",
        source="ui",
        status="running",
        progress=40,
    )
    rule_job = RuleChangeJob.objects.create(
        kind="create",
        params={"characteristic": "DeviceType", "query_string": "iPhone", "access_level": "Allow"},
        user=demo.admin,
        user_name="admin",
        source="ui",
        status="running",
        progress=70,
        devices_total=120_000,
    )
    page = _admin(demo, new_page, viewport)
    for url, percent in ((f"/import/{job.pk}/", 40), (f"/jobs/{rule_job.pk}/", 70)):
        page.goto(url)
        bar = page.locator("#job-progress")
        expect(bar).to_have_attribute("aria-valuenow", str(percent))
        expect(bar).to_contain_text(f"{percent} %")
        # ecp.js sets the width (no style attribute under the Content-Security-Policy).
        ratio = _box(bar.locator(".progress-bar"))["width"] / _box(bar)["width"]
        assert abs(ratio - percent / 100) < 0.05, ratio
    # The bar follows the job: the page polls its JSON.
    RuleChangeJob.objects.filter(pk=rule_job.pk).update(progress=85)
    expect(page.locator("#job-progress")).to_contain_text("85 %", timeout=10_000)
