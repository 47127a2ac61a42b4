"""The verbs of `manage.py eas`, one module per object type.

Each module has `register(verbs)`, which adds its verbs to the command's
subparsers; every verb's parser carries a `handler(out, args)` default. A
handler parses and looks up what it was given, calls devices.actions with the
CLI actor for any change (actions raise ActionError on bad input and change
nothing), and writes to `out`, the command's stdout. CliError and ActionError
become one `eas: error: ...` line on stderr.
"""

import getpass

from django.core.management.base import CommandError

from devices.audit import Actor
from devices.models import AuditSource, Mailbox

MAX_ACTOR = 150
_operator = {"name": ""}  # --actor of this command, else the OS user


def set_operator(name: str | None) -> None:
    """Credit this command's changes to NAME (`--actor`); None: the OS user."""
    if name is not None:
        name = name.strip()
        if not name or len(name) > MAX_ACTOR or not name.isprintable():
            raise CliError(f"--actor takes a name of 1 to {MAX_ACTOR} printable characters.")
    _operator["name"] = name or ""


def operator() -> str:
    if _operator["name"]:
        return _operator["name"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (a bare container)
        return "unknown OS user"


class CliActor(Actor):
    """The person running `manage.py eas`: --actor NAME, else the OS user (never "cli")."""

    @property
    def name(self) -> str:
        return operator()


CLI = CliActor(source=AuditSource.CLI)


class CliError(CommandError):
    """A bad argument value: reported as one line, nothing changed."""


def add_verb(verbs, name: str, handler, help: str, epilog: str = ""):
    parser = verbs.add_parser(name, help=help, description=help, epilog=epilog)
    parser.set_defaults(handler=handler)
    return parser


def parse_bool(value: str, option: str) -> bool:
    """true or false (any case), nothing else: a typo must not flip a switch."""
    lowered = (value or "").strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise CliError(f"{option} takes true or false, not {value!r}.")


def find_mailbox(identity: str) -> Mailbox:
    mailbox = Mailbox.objects.by_identity(identity)
    if mailbox is None:
        raise CliError(
            f"No mailbox {identity!r}: give an alias, a primary SMTP address or DOMAIN\\alias."
        )
    return mailbox


def show(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "(none)"
    if value == "":
        return "(empty)"
    return str(value)


def print_result(out, event) -> None:
    """The action's summary (with what re-evaluation did), then each field it changed."""
    out.write(event.message)
    before, after = event.before or {}, event.after or {}
    for key in after:
        if key in before and before[key] != after[key]:
            out.write(f"  {key}: {show(before[key])} -> {show(after[key])}")


def rule_name(query_string: str, characteristic: str) -> str:
    """How Exchange names a device access rule: 'iPhone (DeviceType)'."""
    return f"{query_string} ({characteristic})"
