"""Who changed what, through which door: the Actor and the audit event writer.

Only devices.actions calls `record`; views, CLI verbs and the gate hand an
Actor to the actions they call.
"""

from dataclasses import dataclass

from .gate import decisions
from .models import AuditEvent, AuditSource


@dataclass(frozen=True)
class Actor:
    user: object | None = None  # a django.contrib.auth user, or None for the system
    source: str = AuditSource.SYSTEM
    ip: str | None = None
    request_id: str = ""

    @property
    def name(self) -> str:
        if self.user is not None:
            return self.user.get_username()
        return str(self.source)

    @property
    def user_id(self):
        return getattr(self.user, "pk", None)


SYSTEM = Actor(source=AuditSource.SYSTEM)


def record(
    actor: Actor,
    *,
    action: str,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    before=None,
    after=None,
    message: str = "",
) -> AuditEvent:
    # Whatever is audited may change a gate decision: cached ones go (decisions.py).
    decisions.audited(action, actor.source)
    if obj is not None:
        object_type = object_type or type(obj).__name__
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    return AuditEvent.objects.create(
        actor_id=actor.user_id,
        actor_name=actor.name,
        source=actor.source,
        client_ip=actor.ip,
        request_id=actor.request_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:256],
        before=before,
        after=after,
        message=message,
    )
