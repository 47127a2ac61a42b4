"""Access policies and organisation-wide DeviceIds, beyond what Exchange offers.

get-access-policy, new-access-policy, set-access-policy, remove-access-policy:
a default access level for part of the organisation (members, or mailboxes of
some mail domains), used in place of the org default.
get-org-device-id, add-org-device-id, remove-org-device-id: DeviceIds allowed
for every mailbox (a pool of loan devices).
"""

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from devices import actions
from devices.models import AccessPolicy, MobileDevice, OrgDeviceId

from . import CLI, CliError, add_verb, print_result
from .output import add_format_option, render

POLICY_FIELDS = (
    "name",
    "default_access_level",
    "domains",
    "directory_groups",
    "priority",
    "mailbox_count",
    "member_count",
    "created_at",
)
ORG_ID_FIELDS = ("device_id", "note", "device_count", "created_at")
POLICY_HELP = (
    "A mailbox belongs to a policy as an explicit member (set-mailbox ALIAS --access-policy"
    " NAME), by the domain of its primary SMTP address, or by membership of a directory group"
    " (--directory-group DN, followed on each sync-directory); the lowest priority number"
    " wins. The policy's level replaces the organisation default (reason Global); mailbox"
    " lists, organisation-wide DeviceIds and rules still come first."
)


def register(verbs) -> None:
    p = add_verb(
        verbs, "get-access-policy", get_access_policy, "List access policies.", epilog=POLICY_HELP
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="only this policy")
    add_format_option(p)

    p = add_verb(
        verbs,
        "new-access-policy",
        new_access_policy,
        "Create an access policy; the mailboxes it covers are re-evaluated.",
        epilog=POLICY_HELP,
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--default-access-level", required=True, metavar="Allow|Block|Quarantine")
    _domain_option(
        p, "mail domains whose mailboxes follow the policy (several, or repeat the option)"
    )
    _group_option(p, "directory groups (DNs) whose members follow the policy (repeatable)")
    p.add_argument("--priority", type=int, metavar="N", help="0 to 10000, default 100")

    p = add_verb(
        verbs,
        "set-access-policy",
        set_access_policy,
        "Change an access policy; the mailboxes it covers, before and after, are re-evaluated.",
        epilog=POLICY_HELP,
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--default-access-level", metavar="Allow|Block|Quarantine")
    _domain_option(p, "replaces the domains; give no domain to clear them")
    _group_option(p, "replaces the directory groups; give no DN to clear them")
    p.add_argument("--priority", type=int, metavar="N")
    p.add_argument("--name", dest="new_name", metavar="NEW", help="rename the policy")

    p = add_verb(
        verbs,
        "remove-access-policy",
        remove_access_policy,
        "Remove an access policy; its mailboxes follow their domain's policy or the"
        " organisation default again.",
    )
    p.add_argument("name", metavar="NAME")

    p = add_verb(
        verbs,
        "get-org-device-id",
        get_org_device_id,
        "List the DeviceIds allowed for every mailbox.",
    )
    add_format_option(p)

    p = add_verb(
        verbs,
        "add-org-device-id",
        add_org_device_id,
        "Allow a DeviceId for every mailbox (Allowed / OrgAllowList), after the mailbox's own"
        " lists and before the rules.",
    )
    p.add_argument("device_id", metavar="ID")
    p.add_argument("--note", default="", metavar="TEXT", help="why, e.g. 'loan pool, shelf 3'")

    p = add_verb(
        verbs,
        "remove-org-device-id",
        remove_org_device_id,
        "Take a DeviceId off the organisation-wide list; its devices are re-evaluated.",
    )
    p.add_argument("device_id", metavar="ID")


def _domain_option(parser, help: str) -> None:
    parser.add_argument(
        "--domain",
        dest="domains",
        action="extend",
        nargs="*",
        metavar="DOMAIN",
        help=help,
    )


def _group_option(parser, help: str) -> None:
    parser.add_argument(
        "--directory-group",
        dest="directory_groups",
        action="extend",
        nargs="*",
        metavar="DN",
        help=help,
    )


def _domains(values: list[str] | None) -> list[str] | None:
    """The domains given, also accepting 'a.example, b.example' as one argument."""
    if values is None:
        return None
    return [d.strip() for value in values for d in value.split(",") if d.strip()]


def find_policy(name: str) -> AccessPolicy:
    policy = AccessPolicy.objects.filter(name__iexact=(name or "").strip()).first()
    if policy is None:
        raise CliError(f"No access policy {name!r}.")
    return policy


def get_access_policy(out, args) -> None:
    policies = AccessPolicy.objects.annotate(
        mailbox_count=Count("mailboxes", distinct=True),
        member_count=Count(
            "mailboxes", filter=Q(mailboxes__access_policy_pinned=True), distinct=True
        ),
    )
    if args.name is not None:
        policies = policies.filter(pk=find_policy(args.name).pk)
    rows = (
        {
            "name": p.name,
            "default_access_level": p.default_access_level,
            "domains": list(p.domains),
            "directory_groups": list(p.directory_groups),
            "priority": p.priority,
            "mailbox_count": p.mailbox_count,
            "member_count": p.member_count,
            "created_at": p.created_at,
        }
        for p in policies.order_by("priority", "name")
    )
    render(out, rows, args.format, fields=POLICY_FIELDS, empty="No access policies.")


def new_access_policy(out, args) -> None:
    actions.parse_access_level(args.default_access_level)  # before any query
    result = actions.create_policy(
        CLI,
        name=args.name,
        default_access_level=args.default_access_level,
        domains=_domains(args.domains) or [],
        directory_groups=args.directory_groups or [],
        priority=100 if args.priority is None else args.priority,
    )
    out.write(result.event.message)


def set_access_policy(out, args) -> None:
    domains = _domains(args.domains)
    groups = args.directory_groups
    changes = (args.default_access_level, domains, groups, args.priority, args.new_name)
    if all(value is None for value in changes):
        raise CliError(
            "set-access-policy: nothing to change; give --default-access-level, --domain,"
            " --directory-group, --priority or --name."
        )
    if args.default_access_level is not None:
        actions.parse_access_level(args.default_access_level)
    result = actions.update_policy(
        CLI,
        find_policy(args.name),
        name=args.new_name,
        default_access_level=args.default_access_level,
        domains=domains,
        directory_groups=groups,
        priority=args.priority,
    )
    print_result(out, result.event)


def remove_access_policy(out, args) -> None:
    result = actions.delete_policy(CLI, find_policy(args.name))
    out.write(result.event.message)


def get_org_device_id(out, args) -> None:
    devices = (
        MobileDevice.objects.filter(device_key=OuterRef("device_key"))
        .order_by()
        .values("device_key")
        .annotate(n=Count("pk"))
        .values("n")
    )
    entries = OrgDeviceId.objects.annotate(device_count=Coalesce(Subquery(devices), 0))
    rows = (
        {
            "device_id": e.device_id,
            "note": e.note,
            "device_count": e.device_count,
            "created_at": e.created_at,
        }
        for e in entries
    )
    render(
        out,
        rows,
        args.format,
        fields=ORG_ID_FIELDS,
        empty="No organisation-wide DeviceIds.",
    )


def add_org_device_id(out, args) -> None:
    result = actions.add_org_device_id(CLI, args.device_id, note=args.note)
    out.write(result.event.message)


def remove_org_device_id(out, args) -> None:
    result = actions.remove_org_device_id(CLI, args.device_id)
    out.write(result.event.message)
