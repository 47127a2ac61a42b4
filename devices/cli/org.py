"""get-org-settings, set-org-settings (Get/Set-ActiveSyncOrganizationSettings)."""

from devices import actions
from devices.models import OrgSettings

from . import CLI, CliError, add_verb, parse_bool, print_result
from .output import add_format_option, render

# Switches beyond Exchange's settings: option -> set_org_settings keyword.
SWITCHES = {
    "--send-user-mail": "send_user_mail",
    "--new-device-alert": "new_device_alert",
    "--allow-health-probes": "allow_health_probes",
}


def register(verbs) -> None:
    p = add_verb(verbs, "get-org-settings", get_org_settings, "Show the organisation settings.")
    add_format_option(p)

    p = add_verb(
        verbs,
        "set-org-settings",
        set_org_settings,
        "Change the organisation settings; every device is re-evaluated when the default"
        " access level or the discovery window changes.",
    )
    p.add_argument("--default-access-level", metavar="Allow|Block|Quarantine")
    p.add_argument(
        "--admin-mail-recipients",
        nargs="*",
        metavar="ADDRESS",
        help="replaces the list; give no address to clear it",
    )
    p.add_argument("--user-mail-insert", metavar="TEXT", help="text added to mails to users")
    p.add_argument(
        "--language",
        metavar="en|de|fr|es",
        help="with --user-mail-insert: the insert for mails in this language (an empty TEXT"
        " removes it); mails in a language without one use the default language's insert,"
        " then the one given without --language",
    )
    p.add_argument(
        "--default-language",
        metavar="en|de|fr|es",
        help="mails and phone notices of mailboxes whose language is not known, admin mails",
    )
    p.add_argument(
        "--time-zone", metavar="ZONE", help="the IANA time zone of times in mails (Europe/Berlin)"
    )
    p.add_argument("--discovery-window-minutes", type=int, metavar="N")
    for option in SWITCHES:
        p.add_argument(option, metavar="true|false")
    p.add_argument("--admin-mail-mode", metavar="each|digest")
    p.add_argument("--admin-digest-minutes", type=int, metavar="N")
    p.add_argument(
        "--purge-quarantined-after-days",
        metavar="N|never",
        help="remove devices left in quarantine for N days (1 to 3650), daily; never: keep them",
    )
    p.add_argument(
        "--self-approval",
        metavar="never|first|always",
        help="may users approve their own quarantined device: never, their first device"
        " only, or always",
    )


def get_org_settings(out, args) -> None:
    # Not OrgSettings.load(): a read must not create the row.
    org = OrgSettings.objects.filter(pk=1).first() or OrgSettings(pk=1)
    row = {**actions.org_snapshot(org), "updated_at": org.updated_at}
    render(out, [row], args.format, fields=list(row), vertical=True)


def set_org_settings(out, args) -> None:
    changes = {
        "default_access_level": args.default_access_level,
        "admin_mail_recipients": _addresses(args.admin_mail_recipients),
        "user_mail_insert": args.user_mail_insert,
        "discovery_window_minutes": args.discovery_window_minutes,
        "admin_mail_mode": args.admin_mail_mode,
        "admin_digest_minutes": args.admin_digest_minutes,
        "self_approval": args.self_approval,
        "default_language": args.default_language,
        "time_zone": args.time_zone,
    }
    if args.language is not None:
        if args.user_mail_insert is None:
            raise CliError("set-org-settings: --language goes with --user-mail-insert.")
        changes["user_mail_insert_language"] = args.language
    for option, keyword in SWITCHES.items():
        value = getattr(args, keyword)
        changes[keyword] = None if value is None else parse_bool(value, option)
    purge = args.purge_quarantined_after_days
    if all(value is None for value in changes.values()) and purge is None:
        raise CliError("set-org-settings: nothing to change; see set-org-settings --help.")
    if purge is not None:  # None means "unchanged" here; the action takes None as "never"
        changes["purge_quarantined_after_days"] = _purge_days(purge)
    result = actions.set_org_settings(CLI, **changes)
    print_result(out, result.event)


def _purge_days(value: str) -> int | None:
    days = value.strip().lower()
    if days == "never":
        return None
    if not (days.isascii() and days.isdigit()):
        raise CliError(
            f"--purge-quarantined-after-days takes a number of days or never, not {value!r}."
        )
    return int(days)


def _addresses(values: list[str] | None) -> list[str] | None:
    """The addresses given, also accepting 'a@x, b@x' as one argument."""
    if values is None:
        return None
    return [a.strip() for value in values for a in value.split(",") if a.strip()]
