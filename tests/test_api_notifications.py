"""Sent mail: list and resend, for Organization Management only."""

import pytest

from devices.models import AuditEvent, AuditSource
from notifications.models import Notification, Status
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures

URL = "/api/v1/notifications"


@pytest.fixture
def org(client_for):
    return client_for("org")


@pytest.fixture
def mails(cast):
    """The cast's quarantine mails: alice's failed, bob's sent."""
    Notification.objects.filter(recipient="alice@example.org").update(
        status=Status.FAILED, last_error="550 mailbox full"
    )
    Notification.objects.filter(recipient="bob@example.org").update(status=Status.SENT)
    return {
        "failed": Notification.objects.filter(recipient="alice@example.org").first(),
        "sent": Notification.objects.get(recipient="bob@example.org"),
    }


def test_list_newest_first_with_filters(mails, org):
    body = org.get(URL).json()
    assert body["count"] == Notification.objects.count()
    ids = [n["id"] for n in body["results"]]
    assert ids == sorted(ids, reverse=True)
    failed = org.get(URL, {"status": "failed"}).json()["results"]
    assert {n["recipient"] for n in failed} == {"alice@example.org"}
    assert failed[0]["last_error"] == "550 mailbox full"
    assert org.get(URL, {"recipient": "BOB@"}).json()["count"] == 1
    assert org.get(URL, {"kind": "spam"}).status_code == 400


def test_resending_a_failed_mail_retries_it(mails, org):
    mail = mails["failed"]
    response = org.post(f"{URL}/{mail.pk}/resend")
    assert response.status_code == 202
    assert response.json()["notification"]["id"] == mail.pk
    mail.refresh_from_db()
    assert mail.last_error == ""
    event = AuditEvent.objects.get(action="notification.resend")
    assert event.source == AuditSource.API
    assert event.actor_name == "olivia"


def test_resending_a_sent_mail_copies_it(mails, org):
    mail = mails["sent"]
    body = org.post(f"{URL}/{mail.pk}/resend").json()
    assert body["notification"]["id"] != mail.pk
    assert body["notification"]["recipient"] == "bob@example.org"
    assert "queued again" in body["message"]


def test_a_mail_being_sent_cannot_be_resent(mails, org):
    mail = mails["sent"]
    Notification.objects.filter(pk=mail.pk).update(status=Status.SENDING)
    response = org.post(f"{URL}/{mail.pk}/resend")
    assert response.status_code == 400
    assert response.json()["message"] == "A sending mail cannot be resent."


def test_an_unknown_mail_is_404(mails, org):
    assert org.post(f"{URL}/999999/resend").status_code == 404


def test_help_desk_has_no_sent_mail(mails, client_for):
    helpdesk = client_for("helpdesk")
    assert helpdesk.get(URL).status_code == 403
    response = helpdesk.post(f"{URL}/{mails['failed'].pk}/resend")
    assert response.status_code == 403
    assert response.json()["message"] == "Resending mail needs Organization Management."
