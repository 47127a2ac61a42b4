"""Errors next to their fields, summarised at the top with links, the typed value kept
(issue 17, point 5): the mailbox page, settings, rules, policies, org-wide DeviceIds, API
tokens, sign-in and the password change."""

import html
import re

import pytest
from django.test import Client

from devices.models import AccessPolicy, DeviceAccessRule, MailboxDeviceId, OrgDeviceId, OrgSettings

from .conftest import PASSWORD
from .test_web_settings import FORM as SETTINGS


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin(world):
    return _client(world.org)


def _page(response) -> str:
    assert response.status_code in (200, 400)
    return html.unescape(response.content.decode())


def summary(page: str) -> list[tuple[str, str]]:
    """(link target, text) of every entry of the error summary."""
    (box,) = re.findall(r'<div class="alert alert-danger ecp-error-summary".*?</div>', page, re.S)
    return [
        (href, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text)).strip())
        for href, text in re.findall(r'<li>(?:<a [^>]*href="#([^"]*)"[^>]*>)?(.*?)</li>', box, re.S)
    ]


def tag(page: str, input_id: str) -> str:
    (found,) = re.findall(rf'<(?:input|select|textarea)[^>]*id="{input_id}"[^>]*>', page)
    return found


def field_error(page: str, input_id: str) -> str:
    """The error shown right under the input, tied to it by aria-describedby."""
    (tag,) = re.findall(rf'<(?:input|select|textarea)[^>]*id="{input_id}"[^>]*>', page)
    assert "is-invalid" in tag and 'aria-invalid="true"' in tag
    (described,) = re.findall(r'aria-describedby="([^"]*)"', tag)
    ids = described.split()
    errors = [
        re.sub(r"<[^>]+>", "", m.group(1)).strip()
        for i in ids
        if (m := re.search(rf'id="{re.escape(i)}"[^>]*>(.*?)</(?:div|span)>', page, re.S))
    ]
    assert errors, f"no error element for {input_id}"
    return " ".join(errors)


def test_a_bad_device_id_on_the_mailbox_page(world, admin):
    url = f"/mailboxes/{world.alice_box.pk}/"
    response = admin.post(url, {"op": "add", "list": "blocked", "device_id": "has space"})
    page = _page(response)
    assert summary(page) == [("add-device_id", "DeviceId: A DeviceId has no spaces.")]
    assert "There is a problem: nothing was changed" in page
    assert field_error(page, "add-device_id") == "A DeviceId has no spaces."
    # What was typed is kept, and the chosen list too.
    assert 'value="has space"' in tag(page, "add-device_id")
    assert re.search(r'<option value="blocked" selected>', page)
    assert not MailboxDeviceId.objects.exists()


def test_a_device_id_the_action_refuses_is_shown_at_its_field(world, admin):
    url = f"/mailboxes/{world.alice_box.pk}/"
    response = admin.post(url, {"op": "add", "list": "allowed", "device_id": "X\u200bY"})
    page = _page(response)
    ((target, text),) = summary(page)
    assert target == "add-device_id" and text.startswith("DeviceId: ")
    assert not MailboxDeviceId.objects.exists()


def test_no_summary_on_a_page_without_errors(world, admin):
    page = _page(admin.get(f"/mailboxes/{world.alice_box.pk}/"))
    assert "ecp-error-summary" not in page and "is-invalid" not in page


def test_settings_summarise_every_error_with_links(world, admin):
    data = {
        **SETTINGS,
        "admin_mail_recipients": "not-an-address",
        "discovery_window_minutes": "5000",
    }
    page = _page(admin.post("/settings/", data))
    assert "There are 2 problems: nothing was saved" in page
    targets = dict(summary(page))
    assert targets["id_admin_mail_recipients"].startswith("Admin mail recipients")
    assert "Not an e-mail address: not-an-address" in targets["id_admin_mail_recipients"]
    assert "1440" in targets["id_discovery_window_minutes"]
    assert "not-an-address" in re.search(
        r'<textarea[^>]*id="id_admin_mail_recipients"[^>]*>(.*?)</textarea>', page, re.S
    ).group(1)
    assert OrgSettings.load().admin_mail_recipients == []


def test_a_radio_group_error_links_to_its_first_button(world, admin):
    page = _page(admin.post("/settings/", {**SETTINGS, "default_access_level": "Maybe"}))
    ((target, _),) = summary(page)
    assert re.search(rf'<input[^>]*id="{target}"', page), target


def test_rule_form(world, admin):
    data = {"characteristic": "DeviceType", "query_string": "", "access_level": "Block"}
    page = _page(admin.post("/rules/new", data))
    ((target, text),) = summary(page)
    assert target == "id_query_string" and text.startswith("Query string")
    assert DeviceAccessRule.objects.count() == 1


def test_policy_form(world, admin):
    data = {"name": "Execs", "default_access_level": "Allow", "domains": "", "priority": "x"}
    page = _page(admin.post("/policies/new", data))
    ((target, text),) = summary(page)
    assert target == "id_priority" and text.startswith("Priority")
    assert 'value="Execs"' in tag(page, "id_name")
    assert not AccessPolicy.objects.exists()


def test_org_wide_device_ids(world, admin):
    page = _page(admin.post("/org-device-ids/", {"device_id": "has space", "note": "Loan 1"}))
    assert summary(page) == [("org-id-device_id", "DeviceId: A DeviceId has no spaces.")]
    assert field_error(page, "org-id-device_id") == "A DeviceId has no spaces."
    assert 'value="Loan 1"' in tag(page, "org-id-note")
    assert not OrgDeviceId.objects.exists()


def test_api_tokens(world, admin):
    page = _page(admin.post("/account/tokens/", {"name": "x" * 300}))
    ((target, text),) = summary(page)
    assert target == "token-name" and text.startswith("Name: ")
    assert field_error(page, "token-name")
    assert 'value="' + "x" * 300 + '"' in page


def test_sign_in(world):
    page = _page(Client().post("/accounts/login/", {"username": "hd", "password": "wrong"}))
    ((target, text),) = summary(page)
    assert target == "" and "correct username and password" in text
    assert 'value="hd"' in tag(page, "id_username")
    assert "alias (jdoe), not the mail address" in page


def test_password_change(world):
    client = _client(world.helpdesk)
    data = {"old_password": "wrong", "new_password1": "a", "new_password2": "b"}
    page = _page(client.post("/accounts/password/", data))
    targets = [t for t, _ in summary(page)]
    assert "id_old_password" in targets and "id_new_password2" in targets
    assert "the password was not changed" in page
    assert client.login(username="hd", password=PASSWORD)
