"""Screenshots of the main pages against the demo data, and the checks every page must pass:
no horizontal scrolling at phone width, a label on every form field.

The PNGs go to a temporary directory; to refresh the ones in the README run
    ECP_SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest tests/browser -k screenshots
"""

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count

from devices import actions
from devices.audit import Actor
from devices.models import AccessState, AuditSource, Mailbox, MobileDevice

from .conftest import DESKTOP, PHONE, sign_in

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture's need_service() reports it
    expect = None

UNLABELLED = """() => Array.from(document.querySelectorAll(
    'main input:not([type=hidden]), main select, main textarea'))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby'))
  .map(el => el.name || el.id || el.outerHTML)"""

pytestmark = pytest.mark.browser


@pytest.fixture
def shots(tmp_path):
    target = Path(os.environ.get("ECP_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def _check(page, viewport):
    assert page.evaluate(UNLABELLED) == [], page.url
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{page.url} scrolls sideways: {width}px"
    tables = page.evaluate(
        "() => Array.from(document.querySelectorAll('.table-responsive'))"
        ".filter(t => t.scrollWidth > t.clientWidth + 1).length"
    )
    assert tables == 0, f"{page.url}: a table scrolls sideways"


@pytest.fixture
def seeded(live_server, settings, tmp_path):
    """The demo data `make run` shows (devices.demo.seed_demo), its logins kept in tmp_path."""
    settings.VAR_DIR = tmp_path
    from devices.demo import seed_demo

    made = seed_demo()
    quarantined = MobileDevice.objects.filter(access_state=AccessState.QUARANTINED)
    family = (
        quarantined.values("device_type")
        .annotate(n=Count("id"))
        .order_by("-n", "device_type")
        .first()
    )
    end_user = (
        Mailbox.objects.filter(user__isnull=False, user__is_staff=False)
        .annotate(n=Count("devices"))
        .order_by("-n", "alias")
        .first()
    )
    similar = quarantined.filter(device_type=family["device_type"]).order_by("id").first()
    return SimpleNamespace(
        logins=made["logins"],
        end_user=end_user.user.get_username(),
        # A waiting device whose history has the most to tell (the admin approves it on
        # its page, which then says who did), and one of the largest family waiting.
        device=quarantined.exclude(pk=similar.pk)
        .annotate(n=Count("state_changes"))
        .order_by("-n", "id")
        .first(),
        similar=similar,
    )


def _policies(seeded):
    """Three access policies: explicit members, a subsidiary's domain, contractors."""
    admin = Actor(user=get_user_model().objects.get(username="admin"), source=AuditSource.UI)
    executives = actions.create_policy(
        admin, name="Executives", default_access_level="Allow", priority=10
    ).obj
    for mailbox in Mailbox.objects.filter(user__isnull=False).order_by("alias")[:2]:
        actions.set_mailbox_policy(admin, mailbox, executives)
    actions.create_policy(
        admin,
        name="Nordic subsidiary",
        default_access_level="Quarantine",
        domains=["nordic.example.com", "example.no"],
        priority=20,
    )
    actions.create_policy(
        admin,
        name="Contractors",
        default_access_level="Block",
        domains=["contractors.example.com"],
        priority=50,
    )
    actions.add_org_device_id(admin, "LOANIPHONE01", note="Loan iPhone 1 (IT desk)")


def test_screenshots_of_the_main_pages(seeded, new_page, shots):
    logins, device = seeded.logins, seeded.device
    admin = new_page(DESKTOP)
    sign_in(admin, "admin", logins["admin"])
    for name, url in (
        ("dashboard", "/"),
        ("quarantine", "/devices/quarantine/"),
        ("device", f"/devices/{device.pk}/"),
        ("rule-for-similar-devices", f"/rules/new?device={seeded.similar.pk}"),
        ("rules", "/rules/"),
        ("mailbox", f"/mailboxes/{device.mailbox_id}/"),
    ):
        admin.goto(url)
        if name == "device":
            admin.get_by_role("button", name="Allow", exact=True).click()
            expect(admin.locator("#decided-by")).to_contain_text(
                "Approved by admin (Control panel)"
            )
        _check(admin, DESKTOP)
        admin.screenshot(path=shots / f"{name}.png")
    admin.goto("/rules/test?device_type=iPhone&device_model=iPhone15C2&info_received=on")
    expect(admin.locator("#test-result")).to_be_visible()
    admin.goto("/settings/")
    admin.get_by_label("Allow", exact=True).check()
    admin.get_by_role("button", name="Save settings").click()
    expect(admin.locator("#level-confirm")).to_be_visible()
    _check(admin, DESKTOP)
    admin.screenshot(path=shots / "settings.png")
    # Access policies, made through the pages' own actions, then the audit log they fill.
    _policies(seeded)
    for name, url in (("policies", "/policies/"), ("audit", "/audit/")):
        admin.goto(url)
        _check(admin, DESKTOP)
        admin.screenshot(path=shots / f"{name}.png")
    admin.goto("/org-device-ids/")
    _check(admin, DESKTOP)
    # Organization Management's eleven links fit, or fold into the menu, at any laptop width.
    for width in (1024, 1200):
        laptop = {"width": width, "height": 800}
        admin.set_viewport_size(laptop)
        admin.goto("/audit/")
        _check(admin, laptop)
    admin.set_viewport_size(DESKTOP)

    user = new_page(DESKTOP)
    sign_in(user, seeded.end_user, logins[seeded.end_user])
    _check(user, DESKTOP)
    user.screenshot(path=shots / "my-devices.png")

    phone = new_page(PHONE)
    sign_in(phone, "helpdesk", logins["helpdesk"])
    for name, url in (
        ("quarantine-phone", "/devices/quarantine/"),
        (None, "/"),
        (None, f"/devices/{device.pk}/"),
        (None, f"/mailboxes/{device.mailbox_id}/"),
        (None, "/devices/"),
        (None, "/rules/"),
        (None, "/settings/"),
        (None, "/policies/"),
        (None, "/org-device-ids/"),
        (None, "/audit/"),
    ):
        phone.goto(url)
        _check(phone, PHONE)
        if name:
            phone.screenshot(path=shots / f"{name}.png")
    for name in (
        "dashboard",
        "quarantine",
        "device",
        "settings",
        "my-devices",
        "audit",
        "policies",
    ):
        assert (shots / f"{name}.png").stat().st_size < 400_000


def test_screenshots_of_the_mails_that_act(seeded, new_page, shots):
    """The admin mail with Allow / Block, the user mail with "Was this you?", and the
    one confirmation page an admin's link opens (issue 18)."""
    from notifications.models import Kind, Notification
    from notifications.rendering import render

    mailbox = Mailbox.objects.get(user__username=seeded.end_user)
    gate = Actor(source=AuditSource.GATE)
    device = actions.record_contact(
        gate,
        mailbox,
        actions.Contact(
            device_id="ApplF2LXQ9NEWPHONE",
            device_type="iPhone",
            user_agent="Apple-iPhone16C1/2105.45",
            info={"model": "iPhone16C1", "os": "iOS 17.5 21F79"},
        ),
    )
    rows = Notification.objects.filter(context__device__pk=device.pk)
    admin_row = rows.filter(kind=Kind.ADMIN_QUARANTINED).first()
    user_row = rows.get(kind=Kind.USER_QUARANTINED)
    assert admin_row is not None, "the demo names admin mail recipients"
    page = new_page(PHONE)
    for name, row in (("mail-admin", admin_row), ("mail-user", user_row)):
        _subject, _text, html = render(row.kind, row.context)
        page.set_content(html)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} scrolls sideways: {width}px"
        page.screenshot(path=shots / f"{name}.png", full_page=True)
    assert page.get_by_role("link", name="Yes, this is my new phone").count() == 1

    admin = new_page(DESKTOP)
    sign_in(admin, "helpdesk", seeded.logins["helpdesk"])
    admin.goto(admin_row.context["links"]["allow_path"])
    expect(admin.locator("#what-happens")).to_contain_text("allowed list")
    _check(admin, DESKTOP)
    admin.screenshot(path=shots / "link-confirm.png")
    admin.get_by_role("button", name="Allow this device").click()
    expect(admin.locator("#messages")).to_contain_text("Allowed")
    assert MobileDevice.objects.get(pk=device.pk).access_state == AccessState.ALLOWED
    admin.goto(admin_row.context["links"]["allow_path"])
    expect(admin.locator("#link-problem")).to_contain_text("used already")

    owner = new_page(PHONE)  # no sign-in: the signed link is the proof
    other = actions.record_contact(
        gate,
        mailbox,
        actions.Contact(
            device_id="andr0id5t0len", device_type="Android", info={"model": "SM-A546B"}
        ),
    )
    mine = Notification.objects.get(kind=Kind.USER_QUARANTINED, context__device__pk=other.pk)
    owner.goto(mine.context["links"]["not_mine_path"])
    _check(owner, PHONE)
    owner.screenshot(path=shots / "link-not-me.png")
    owner.get_by_role("button", name="No, this was not me: block it").click()
    expect(owner.locator("#link-done")).to_contain_text("Change your password now.")
    assert MobileDevice.objects.get(pk=other.pk).access_state == AccessState.BLOCKED
    for name in ("mail-admin", "mail-user", "link-confirm", "link-not-me"):
        assert (shots / f"{name}.png").stat().st_size < 400_000


IMPORT_CSV = (
    "#TYPE Microsoft.Exchange.Data.Directory.Management.CASMailbox\r\n"
    '"SamAccountName","PrimarySmtpAddress","DisplayName","ActiveSyncEnabled",'
    '"ActiveSyncAllowedDeviceIDs","ActiveSyncBlockedDeviceIDs"\r\n'
    '"ivan.petrov","ivan.petrov@example.com","Ivan Petrov","True","ApplF2LXK9QW1",""\r\n'
    '"julia.santos","julia.santos@example.com","Julia Santos","True","",""\r\n'
    '"kofi.mensah","kofi.mensah@example","Kofi Mensah","True","",""\r\n'
    '"anna.berg","anna.berg@example.com","Anna Berg","True","",""\r\n'
)


def test_screenshots_of_the_import_page_and_the_error_display(seeded, new_page, shots):
    """The import page's dry run (one refused line), and a form's errors at phone width."""
    admin = new_page(DESKTOP)
    sign_in(admin, "admin", seeded.logins["admin"])
    admin.goto("/import/")
    admin.get_by_label("CSV file").set_input_files(
        files=[{"name": "mailboxes.csv", "mimeType": "text/csv", "buffer": IMPORT_CSV.encode()}]
    )
    admin.get_by_role("button", name="Check the file (dry run)").click()
    expect(admin.locator("#import-refused")).to_be_visible()
    _check(admin, DESKTOP)
    admin.screenshot(path=shots / "import.png", full_page=True)

    phone = new_page(PHONE)
    sign_in(phone, "helpdesk", seeded.logins["helpdesk"])
    phone.goto(f"/mailboxes/{seeded.device.mailbox_id}/")
    phone.get_by_label("DeviceId").fill("Appl F2LX")
    phone.get_by_role("button", name="Add", exact=True).click()
    expect(phone.locator("#error-summary")).to_be_focused()
    _check(phone, PHONE)
    phone.screenshot(path=shots / "errors-phone.png")
    phone.get_by_role("link", name="DeviceId: A DeviceId has no spaces.").click()
    field = phone.get_by_label("DeviceId")
    expect(field).to_be_focused()
    expect(field).to_be_in_viewport(ratio=1)
    phone.screenshot(path=shots / "errors-phone-field.png")
    for name in ("import", "errors-phone", "errors-phone-field"):
        assert (shots / f"{name}.png").stat().st_size < 400_000
