"""Who may see and change what in the control panel.

Three roles (issue 4):
- Organization Management (the group, or a superuser): everything.
- Help Desk (the group): every device and mailbox; allow, block and remove
  devices; edit a mailbox's allowed and blocked lists. Rules and organisation
  settings are read-only.
- End user (a login linked to a mailbox, in neither group): only "My devices",
  where they may approve their own quarantined device when the organisation's
  self-approval setting allows it.

Both staff roles read the audit log, the access policies and the
organisation-wide DeviceIds; only Organization Management changes the last two.

Roles come from group *names*, compared case-insensitively, so nothing depends
on the groups' ids (migration 0004_roles creates them; a flushed test database
or a hand-made group works just as well). A missing group means nobody has
that role, never an error.

Each object type has one lookup helper that fetches the object and checks the
permission together (`get_device_for_user` and friends), so no view can forget
the check. An end user asking for someone else's device gets a 404, exactly
like a device that does not exist: ids cannot be probed.
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404

from .models import (
    AccessPolicy,
    DeviceAccessRule,
    Mailbox,
    MobileDevice,
    OrgDeviceId,
    OrgSettings,
    RuleChangeJob,
)

ORG_MANAGEMENT_GROUP = "Organization Management"
HELP_DESK_GROUP = "Help Desk"

RULES_READ_ONLY = "Only Organization Management can create or change device access rules."
SETTINGS_READ_ONLY = "Only Organization Management can change the organisation settings."
ACTIVESYNC_READ_ONLY = "Only Organization Management can turn ActiveSync on or off."
POLICIES_READ_ONLY = "Only Organization Management can create, change or assign access policies."
ORG_DEVICE_IDS_READ_ONLY = (
    "Only Organization Management can change the organisation-wide DeviceId list."
)
STAFF_ONLY = "This page is for the help desk and administrators."


class Role(models.TextChoices):
    ORG_MANAGEMENT = "org", ORG_MANAGEMENT_GROUP
    HELP_DESK = "helpdesk", HELP_DESK_GROUP
    END_USER = "enduser", "End user"
    NONE = "none", "No role"


STAFF_ROLES = frozenset({Role.ORG_MANAGEMENT, Role.HELP_DESK})

_CACHE_ATTR = "_ecp_role"


def role_for(user) -> Role:
    """The user's role, looked up once per request (cached on the user object)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Role.NONE
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    if user.is_superuser:
        role = Role.ORG_MANAGEMENT
    else:
        names = {name.casefold() for name in user.groups.values_list("name", flat=True)}
        if ORG_MANAGEMENT_GROUP.casefold() in names:
            role = Role.ORG_MANAGEMENT
        elif HELP_DESK_GROUP.casefold() in names:
            role = Role.HELP_DESK
        elif Mailbox.objects.filter(user=user).exists():
            role = Role.END_USER
        else:
            role = Role.NONE
    setattr(user, _CACHE_ATTR, role)
    return role


def is_staff_role(user) -> bool:
    """Help Desk or Organization Management: sees every device and mailbox."""
    return role_for(user) in STAFF_ROLES


def can_manage_devices(user) -> bool:
    """Allow, block, remove devices; edit mailbox allowed/blocked lists."""
    return role_for(user) in STAFF_ROLES


def can_manage_rules(user) -> bool:
    return role_for(user) == Role.ORG_MANAGEMENT


def can_manage_settings(user) -> bool:
    return role_for(user) == Role.ORG_MANAGEMENT


def can_toggle_activesync(user) -> bool:
    return role_for(user) == Role.ORG_MANAGEMENT


def can_manage_policies(user) -> bool:
    """Create, change, delete access policies and set a mailbox's membership."""
    return role_for(user) == Role.ORG_MANAGEMENT


def can_manage_org_device_ids(user) -> bool:
    return role_for(user) == Role.ORG_MANAGEMENT


def staff_required(view):
    """Signed in as Help Desk or Organization Management; anonymous: to the sign-in page."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_staff_role(request.user):
            raise PermissionDenied(STAFF_ONLY)
        return view(request, *args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------
# one lookup + check per object type


def get_device_for_user(request, pk, *, change: bool = False) -> MobileDevice:
    """The partnership `pk` if this login may see it (and change it, with change=True).

    Staff see every device. An end user sees only their own mailbox's devices
    and changes none; anyone else's device is a 404, as if it did not exist.
    """
    devices = MobileDevice.objects.select_related("mailbox", "access_rule", "access_policy")
    role = role_for(request.user)
    if role in STAFF_ROLES:
        return _get_or_404(devices, pk)
    if role == Role.END_USER:
        device = _get_or_404(devices.filter(mailbox__user=request.user), pk)
        if change:
            raise PermissionDenied("Ask the help desk to allow or block a device.")
        return device
    raise Http404("No such device.")


def get_own_device_for_user(request, pk) -> MobileDevice:
    """A device of the login's own mailbox, whatever the role (self-service); else a 404."""
    if not request.user.is_authenticated:
        raise Http404("No such device.")
    devices = MobileDevice.objects.select_related("mailbox", "access_rule", "access_policy")
    return _get_or_404(devices.filter(mailbox__user=request.user), pk)


LINK_NEEDS_STAFF = "Only the help desk and administrators can allow or block a device."


def get_device_for_link(request, token: str):
    """(link, device, link state) for a signed mail link (devices.links).

    Admin links (Allow, Block) are for a signed-in Help Desk or Organization
    Management login (the view sends anonymous visitors to sign in first);
    anyone else gets 403. The owner's links need no sign-in: the signature
    is the proof. A bad or expired token gives (None, None, why).
    """
    from . import links

    link, problem = links.read(token)
    if link is None:
        return None, None, problem
    if link.for_admins and not can_manage_devices(request.user):
        raise PermissionDenied(LINK_NEEDS_STAFF)
    devices = MobileDevice.objects.select_related("mailbox", "access_rule", "access_policy")
    device = devices.filter(pk=link.device_pk).first()
    return link, device, links.state_of(link, device)


def get_mailbox_for_user(request, pk, *, toggle: bool = False) -> Mailbox:
    """Staff may see every mailbox and edit its lists; only Org Management toggles ActiveSync."""
    role = role_for(request.user)
    if role not in STAFF_ROLES:
        raise PermissionDenied(STAFF_ONLY)
    if toggle and role != Role.ORG_MANAGEMENT:
        raise PermissionDenied(ACTIVESYNC_READ_ONLY)
    return _get_or_404(Mailbox.objects.all(), pk)


def get_rule_for_user(request, pk, *, change: bool = False) -> DeviceAccessRule:
    """Staff see rules; only Organization Management changes them."""
    role = role_for(request.user)
    if role not in STAFF_ROLES:
        raise PermissionDenied(STAFF_ONLY)
    if change and role != Role.ORG_MANAGEMENT:
        raise PermissionDenied(RULES_READ_ONLY)
    return _get_or_404(DeviceAccessRule.objects.all(), pk)


def get_org_settings_for_user(request, *, change: bool = False) -> OrgSettings:
    role = role_for(request.user)
    if role not in STAFF_ROLES:
        raise PermissionDenied(STAFF_ONLY)
    if change and role != Role.ORG_MANAGEMENT:
        raise PermissionDenied(SETTINGS_READ_ONLY)
    return OrgSettings.load()


def get_policy_for_user(request, pk, *, change: bool = False) -> AccessPolicy:
    """Staff see access policies; only Organization Management changes them."""
    role = role_for(request.user)
    if role not in STAFF_ROLES:
        raise PermissionDenied(STAFF_ONLY)
    if change and role != Role.ORG_MANAGEMENT:
        raise PermissionDenied(POLICIES_READ_ONLY)
    return _get_or_404(AccessPolicy.objects.all(), pk)


def get_org_device_id_for_user(request, pk, *, change: bool = False) -> OrgDeviceId:
    """Staff see the organisation-wide DeviceIds; only Organization Management changes them."""
    role = role_for(request.user)
    if role not in STAFF_ROLES:
        raise PermissionDenied(STAFF_ONLY)
    if change and role != Role.ORG_MANAGEMENT:
        raise PermissionDenied(ORG_DEVICE_IDS_READ_ONLY)
    return _get_or_404(OrgDeviceId.objects.all(), pk)


def jobs_for_user(user):
    """Organization Management sees every rule change job, its creator their own."""
    jobs = RuleChangeJob.objects.all()
    if role_for(user) == Role.ORG_MANAGEMENT:
        return jobs
    if user is None or not user.is_authenticated:
        return jobs.none()
    return jobs.filter(user=user)


def get_job_for_user(request, pk) -> RuleChangeJob:
    """A rule change job this login may see (jobs_for_user); else a 404."""
    if not request.user.is_authenticated:
        raise Http404("No such job.")
    return _get_or_404(jobs_for_user(request.user), pk)


def _get_or_404(qs, pk):
    try:
        return qs.get(pk=int(pk))
    except (ValueError, TypeError, qs.model.DoesNotExist):
        raise Http404(f"No such {qs.model._meta.verbose_name}.") from None
