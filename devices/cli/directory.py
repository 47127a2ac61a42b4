"""`eas sync-directory`: mailboxes follow the directory (LDAP / Active Directory)."""

import json

from django.conf import settings

from devices.actions.directory import sync_directory
from devices.directory import DirectoryUnavailable
from devices.models import AuditSource

from . import CliActor, CliError, add_verb
from .output import add_format_option, render

FIELDS = ("created", "updated", "disabled", "unchanged", "skipped", "dry_run")


def register(verbs) -> None:
    p = add_verb(
        verbs,
        "sync-directory",
        sync_directory_verb,
        "Create, update and disable mailboxes from the directory (AUTH_LDAP_* settings).",
        epilog="A user disabled or removed in the directory gets ActiveSync refused"
        " (Blocked / AccountDisabled). A directory that cannot answer changes nothing; a"
        " sync that would disable more than ECP_DIRECTORY_MAX_DISABLE_PERCENT (default 10)"
        " of the mailboxes that follow the directory refuses unless --force is given.",
    )
    p.add_argument("--dry-run", action="store_true", help="count what would change; change nothing")
    p.add_argument("--force", action="store_true", help="disable however many it must")
    add_format_option(p)


def sync_directory_verb(out, args) -> None:
    if not getattr(settings, "ECP_LDAP_ENABLED", False):
        raise CliError("sync-directory: no directory configured (set AUTH_LDAP_SERVER_URI).")
    from devices.directory import search

    try:
        found, _ = search.read_all()
    except DirectoryUnavailable as exc:
        raise CliError(f"sync-directory: {exc}; nothing was changed.") from None
    # Audited as the directory's doing, credited to whoever ran the command.
    actor = CliActor(source=AuditSource.DIRECTORY)
    counts = sync_directory(actor, found, dry_run=args.dry_run, force=args.force)
    if args.format == "json":  # one object: the counts of this run
        out.write(json.dumps(counts.as_dict()))
        return
    render(out, [counts.as_dict()], args.format, fields=FIELDS)
