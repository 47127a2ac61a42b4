"""The audit log is append-only: the ORM refuses to change or delete an event.

Through the queryset (update, delete, bulk_update) and through an instance
(a second save, delete); deleting the actor's account keeps the event with
the copied name; the Django admin shows events and changes none.
"""

import pytest
from django.test import Client

from devices import actions
from devices.audit import Actor
from devices.models import AuditEvent, AuditImmutable, AuditSource, DeviceStateChange, MobileDevice

GATE = Actor(source=AuditSource.GATE)


def rows() -> list[dict]:
    return list(AuditEvent.objects.order_by("pk").values())


@pytest.fixture
def history(cli_actor, django_user_model):
    """A mailbox made from the CLI, a device the gate saw, allowed by a named admin."""
    admin = django_user_model.objects.create_user("hannah", "hannah@example.org", "pw")
    box = actions.create_mailbox(cli_actor, alias="ray", email="ray@example.org").obj
    device = actions.record_contact(
        GATE, box, actions.Contact(device_id="RAYPHONE1", device_type="iPhone")
    )
    actions.set_org_settings(cli_actor, default_access_level="Quarantine")
    actions.allow_device(Actor(user=admin, source=AuditSource.UI, ip="192.0.2.1"), box, "RAYPHONE1")
    return {"admin": admin, "mailbox": box, "device": device}


# ---------------------------------------------------------------------------
# the queryset


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        lambda qs: qs.update(message="nothing happened"),
        lambda qs: qs.filter(action="device.allow").update(actor_name="someone else"),
        lambda qs: qs.delete(),
        lambda qs: qs.filter(source=AuditSource.CLI).delete(),
        lambda qs: qs.bulk_update(list(qs), ["message"]),
    ],
    ids=["update-all", "update-some", "delete-all", "delete-some", "bulk-update"],
)
def test_the_queryset_refuses_to_change_or_delete(history, change):
    before = rows()
    with pytest.raises(AuditImmutable):
        change(AuditEvent.objects.all())
    assert rows() == before


# ---------------------------------------------------------------------------
# an instance


@pytest.mark.django_db
def test_an_event_cannot_be_saved_twice(history):
    before = rows()
    event = AuditEvent.objects.get(action="device.allow")
    event.message = "it was not me"
    with pytest.raises(AuditImmutable):
        event.save()
    with pytest.raises(AuditImmutable):
        event.save(update_fields=["message"])
    assert rows() == before


@pytest.mark.django_db
def test_an_event_cannot_be_deleted(history):
    before = rows()
    with pytest.raises(AuditImmutable):
        AuditEvent.objects.get(action="device.allow").delete()
    assert rows() == before


@pytest.mark.django_db
def test_new_events_are_still_written(history, cli_actor):
    count = AuditEvent.objects.count()
    actions.block_device(cli_actor, history["mailbox"], "RAYPHONE1")
    assert AuditEvent.objects.count() == count + 1


# ---------------------------------------------------------------------------
# deleting what the events are about


@pytest.mark.django_db
def test_deleting_the_actor_keeps_the_event_and_the_name(history):
    event = AuditEvent.objects.get(action="device.allow")
    assert event.actor == history["admin"]
    others = [r for r in rows() if r["id"] != event.pk]
    history["admin"].delete()
    event = AuditEvent.objects.get(pk=event.pk)
    assert event.actor is None
    assert event.actor_name == "hannah"
    assert (event.source, event.client_ip) == (AuditSource.UI, "192.0.2.1")
    assert [r for r in rows() if r["id"] != event.pk] == others


@pytest.mark.django_db
def test_removing_a_device_keeps_its_events_and_history(history, cli_actor):
    device = history["device"]
    before = rows()
    changes = DeviceStateChange.objects.filter(device=device).count()
    actions.remove_device(cli_actor, device)
    assert not MobileDevice.objects.filter(pk=device.pk).exists()
    assert rows()[: len(before)] == before
    assert DeviceStateChange.objects.filter(device_repr="RAYPHONE1 (ray)").count() == changes
    assert (
        AuditEvent.objects.filter(object_type="MobileDevice", object_id=str(device.pk)).count() >= 3
    )


# ---------------------------------------------------------------------------
# the Django admin


@pytest.fixture
def superuser_client(history, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client = Client()
    client.force_login(root)
    return client


@pytest.mark.django_db
def test_the_admin_lists_and_shows_events(superuser_client):
    event = AuditEvent.objects.get(action="device.allow")
    page = superuser_client.get("/admin/devices/auditevent/")
    assert page.status_code == 200
    assert "device.allow" in page.content.decode()
    assert "delete_selected" not in page.content.decode()
    detail = superuser_client.get(f"/admin/devices/auditevent/{event.pk}/change/")
    assert detail.status_code == 200  # view only
    assert b'name="_save"' not in detail.content


@pytest.mark.django_db
def test_the_admin_adds_changes_and_deletes_nothing(superuser_client):
    before = rows()
    event = AuditEvent.objects.get(action="device.allow")
    base = "/admin/devices/auditevent"
    assert superuser_client.get(f"{base}/add/").status_code == 403
    assert (
        superuser_client.post(f"{base}/add/", {"action": "x", "actor_name": "x"}).status_code == 403
    )
    changed = superuser_client.post(
        f"{base}/{event.pk}/change/", {"message": "edited", "actor_name": "nobody"}
    )
    assert changed.status_code == 403
    assert superuser_client.get(f"{base}/{event.pk}/delete/").status_code == 403
    assert superuser_client.post(f"{base}/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = superuser_client.post(
        f"{base}/", {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    assert rows() == before
