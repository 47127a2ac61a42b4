"""What every API view needs: who is acting, and the list of devices a user may see."""

from devices.audit import Actor
from devices.models import AuditSource, MobileDevice
from devices.permissions import STAFF_ROLES, Role, role_for
from devices.web import client_ip, request_id


def actor_for(request) -> Actor:
    return Actor(
        user=request.user,
        source=AuditSource.API,
        ip=client_ip(request),
        request_id=request_id(request),
    )


def visible_devices(user):
    """Staff see every partnership, an end user their own mailbox's, anyone else none."""
    devices = MobileDevice.objects.select_related("mailbox", "access_rule")
    role = role_for(user)
    if role in STAFF_ROLES:
        return devices
    if role == Role.END_USER:
        return devices.filter(mailbox__user=user)
    return devices.none()
