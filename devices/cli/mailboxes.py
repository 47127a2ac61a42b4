"""new-mailbox, get-mailbox, set-mailbox (New-Mailbox, Get/Set-CASMailbox)."""

import sys

from django.db import transaction
from django.db.models import Count

from devices import actions
from devices.languages import mailbox_language
from devices.models import DeviceIdList, Mailbox, OrgSettings

from . import CLI, CliError, add_verb, find_mailbox, parse_bool, print_result
from .output import add_format_option, render
from .policies import find_policy

FIELDS = (
    "alias",
    "primary_smtp_address",
    "display_name",
    "activesync_enabled",
    "allowed_device_ids",
    "blocked_device_ids",
    "device_count",
    "has_login",
    "access_policy",
    "access_policy_pinned",
    "language",
    "mail_language",
)
TABLE = (
    "alias",
    "primary_smtp_address",
    "display_name",
    "activesync_enabled",
    "device_count",
    "has_login",
    "access_policy",
    "allowed_device_ids",
    "blocked_device_ids",
)


def register(verbs) -> None:
    p = add_verb(
        verbs,
        "new-mailbox",
        new_mailbox,
        "Create a mailbox; with --password also its owner's login, named by the alias.",
    )
    p.add_argument("alias")
    p.add_argument("--email", required=True, metavar="ADDRESS", help="primary SMTP address")
    p.add_argument("--display-name", metavar="NAME", help="default: the alias")
    p.add_argument("--password", metavar="P", help="'-' reads it from the first line of stdin")

    p = add_verb(
        verbs,
        "get-mailbox",
        get_mailbox,
        "List mailboxes, or show one (alias, primary SMTP address or DOMAIN\\alias).",
    )
    p.add_argument("identity", nargs="?", metavar="ALIAS")
    add_format_option(p)

    p = add_verb(
        verbs,
        "set-mailbox",
        set_mailbox,
        "Change a mailbox's ActiveSync switch, its allowed and blocked DeviceId lists and its"
        " access policy; the mailbox's devices are re-evaluated.",
        epilog="The --add/--remove options can be repeated. Adding a DeviceId to one list"
        " takes it off the other. --access-policy NAME makes the mailbox an explicit member"
        " of that policy; --access-policy none makes it follow its domain's policy (or the"
        " organisation default) again. --language sets the language of the mailbox's"
        " mails and phone notice, before the directory's preferredLanguage and the"
        " phone's DeviceOSLanguage.",
    )
    p.add_argument("identity", metavar="ALIAS")
    p.add_argument("--activesync-enabled", metavar="true|false")
    p.add_argument("--display-name", metavar="NAME")
    p.add_argument("--access-policy", metavar="NAME|none")
    p.add_argument(
        "--language",
        metavar="en|de|fr|es|none",
        help="the language of the mailbox's mails and phone notice; none: the directory's,"
        " then the phone's, then the organisation default",
    )
    for option in ("allowed", "blocked"):
        for verb in ("add", "remove"):
            p.add_argument(
                f"--{verb}-{option}-device-id",
                action="append",
                default=[],
                metavar="ID",
                dest=f"{verb}_{option}",
            )


def new_mailbox(out, args) -> None:
    password = args.password
    if password == "-":
        password = sys.stdin.readline().rstrip("\r\n")
    result = actions.create_mailbox(
        CLI,
        alias=args.alias,
        email=args.email,
        display_name=args.display_name or "",
        password=password,
    )
    out.write(result.event.message)


def mailbox_rows(mailboxes):
    org = OrgSettings.objects.filter(pk=1).first() or OrgSettings(pk=1)
    mailboxes = (
        mailboxes.annotate(device_count=Count("devices"))
        .select_related("access_policy")
        .prefetch_related("device_ids")
    )
    for mailbox in mailboxes.iterator(chunk_size=2000):
        entries = sorted(mailbox.device_ids.all(), key=lambda e: e.device_key)
        yield {
            "alias": mailbox.alias,
            "primary_smtp_address": mailbox.primary_smtp_address,
            "display_name": mailbox.display_name,
            "activesync_enabled": mailbox.activesync_enabled,
            "allowed_device_ids": [e.device_id for e in entries if e.list == DeviceIdList.ALLOWED],
            "blocked_device_ids": [e.device_id for e in entries if e.list == DeviceIdList.BLOCKED],
            "device_count": mailbox.device_count,
            "has_login": mailbox.user_id is not None,
            "access_policy": mailbox.access_policy.name if mailbox.access_policy else None,
            "access_policy_pinned": mailbox.access_policy_pinned,
            "language": mailbox.language,  # the admin's; "" when not set
            "mail_language": mailbox_language(mailbox, org),  # what its mails use
        }


def get_mailbox(out, args) -> None:
    mailboxes = Mailbox.objects.all()
    if args.identity is not None:
        mailboxes = mailboxes.filter(pk=find_mailbox(args.identity).pk)
    render(
        out,
        mailbox_rows(mailboxes),
        args.format,
        fields=FIELDS,
        table=TABLE,
        empty="No mailboxes.",
    )


def set_mailbox(out, args) -> None:
    enabled = None
    if args.activesync_enabled is not None:
        enabled = parse_bool(args.activesync_enabled, "--activesync-enabled")
    lists = (args.add_allowed, args.remove_allowed, args.add_blocked, args.remove_blocked)
    mailbox_changes = enabled is not None or args.display_name is not None or any(lists)
    if not mailbox_changes and args.access_policy is None and args.language is None:
        raise CliError(
            "set-mailbox: nothing to change; give --activesync-enabled, --display-name,"
            " --access-policy, --language or an --add-/--remove-...-device-id option."
        )
    if args.language is not None:
        actions.parse_language(args.language)  # refused before anything changes
    mailbox = find_mailbox(args.identity)
    policy = _policy(args.access_policy)
    # Both changes or neither: a bad DeviceId must not leave the policy changed.
    with transaction.atomic():
        if mailbox_changes:
            result = actions.set_mailbox(
                CLI,
                mailbox,
                activesync_enabled=enabled,
                display_name=args.display_name,
                add_allowed=args.add_allowed,
                remove_allowed=args.remove_allowed,
                add_blocked=args.add_blocked,
                remove_blocked=args.remove_blocked,
            )
            print_result(out, result.event)
        if args.access_policy is not None:
            result = actions.set_mailbox_policy(CLI, mailbox, policy)
            print_result(out, result.event)
        if args.language is not None:
            result = actions.set_mailbox_language(CLI, mailbox, args.language)
            print_result(out, result.event)


def _policy(value: str | None):
    """The policy --access-policy names; None for 'none' (follow the domain again)."""
    if value is None or value.strip().lower() == "none":
        return None
    return find_policy(value)
