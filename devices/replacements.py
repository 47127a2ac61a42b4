"""Which approved device a quarantined one probably replaces (a reset phone, a new app).

Used by the quarantine list and the admin mail about a quarantined device.
"""

from django.db.models import Q

from .models import AccessState, MobileDevice


def _family(device) -> tuple | None:
    """DeviceType, model and user agent, when they say enough to recognise a device again."""
    if device.device_type and (device.device_model or device.user_agent):
        return (device.device_type, device.device_model, device.user_agent)
    return None


def mark_replacements(devices) -> None:
    """Set `replaces` on each quarantined device that probably replaces an approved one.

    A reset phone or a reinstalled mail app comes back with a new DeviceId. The
    old one is an Allowed device of the same mailbox with the same IMEI, or the
    same DeviceType, model and user agent. One query for the whole page: the
    candidates of every mailbox on it, matched here.
    """
    waiting = [d for d in devices if d.access_state == AccessState.QUARANTINED]
    for device in devices:
        device.replaces = None
    imeis = {d.imei for d in waiting if d.imei}
    families = {_family(d) for d in waiting} - {None}
    match = Q()
    if imeis:
        match |= Q(imei__in=imeis)
    if families:
        match |= Q(
            device_type__in={f[0] for f in families},
            device_model__in={f[1] for f in families},
            user_agent__in={f[2] for f in families},
        )
    if not match:
        return
    candidates = (
        MobileDevice.objects.filter(
            match,
            mailbox_id__in={d.mailbox_id for d in waiting},
            access_state=AccessState.ALLOWED,
        )
        .only(
            "pk",
            "mailbox_id",
            "device_id",
            "device_type",
            "device_model",
            "user_agent",
            "imei",
            "state_changed_at",
            "last_seen",
        )
        .order_by("last_seen", "id")  # the one that went quiet first
    )
    by_mailbox: dict[int, list] = {}
    for old in candidates:
        by_mailbox.setdefault(old.mailbox_id, []).append(old)
    for device in waiting:
        olds = [old for old in by_mailbox.get(device.mailbox_id, ()) if old.pk != device.pk]
        same_imei = [old for old in olds if device.imei and old.imei == device.imei]
        family = _family(device)
        same_family = [old for old in olds if family and _family(old) == family]
        found = same_imei or same_family
        device.replaces = found[0] if found else None
