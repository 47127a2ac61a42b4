"""get-rule, new-rule, set-rule, remove-rule (*-ActiveSyncDeviceAccessRule).

A rule is named like Exchange names it, "QueryString (Characteristic)", e.g.
"iPhone (DeviceType)", or by its numeric id (a plain number is always an id).
A bare query string works too when only one rule has it.
"""

import re

from devices import actions
from devices.models import Characteristic, DeviceAccessRule

from . import CLI, CliError, add_verb, print_result, rule_name
from .output import add_format_option, render

FIELDS = (
    "id",
    "name",
    "characteristic",
    "query_string",
    "access_level",
    "created_by",
    "created_at",
)
RULE_HELP = (
    "RULE is the rule's id, or its name as Exchange writes it, 'QueryString (Characteristic)',"
    " e.g. 'iPhone (DeviceType)'; a bare query string works when only one rule has it."
)
_NAME = re.compile(r"(?P<query>.+?)\s*\((?P<characteristic>[A-Za-z]+)\)", re.DOTALL)
_CHARACTERISTICS = {c.lower(): c for c in Characteristic.values}


def register(verbs) -> None:
    p = add_verb(verbs, "get-rule", get_rule, "List device access rules.", epilog=RULE_HELP)
    p.add_argument("rule", nargs="?", metavar="RULE", help="only this rule")
    add_format_option(p)

    p = add_verb(
        verbs,
        "new-rule",
        new_rule,
        "Create a device access rule; every device is re-evaluated.",
        epilog="The query string matches case-insensitively; '*' is a wildcard.",
    )
    p.add_argument(
        "--characteristic", required=True, metavar="DeviceType|DeviceModel|DeviceOS|UserAgent"
    )
    p.add_argument("--query-string", required=True, metavar="Q")
    p.add_argument("--access-level", required=True, metavar="Allow|Block|Quarantine")

    p = add_verb(
        verbs,
        "set-rule",
        set_rule,
        "Change a device access rule; every device is re-evaluated.",
        epilog=RULE_HELP,
    )
    p.add_argument("rule", metavar="RULE")
    p.add_argument("--access-level", metavar="Allow|Block|Quarantine")
    p.add_argument("--query-string", metavar="Q")
    p.add_argument("--characteristic", metavar="DeviceType|DeviceModel|DeviceOS|UserAgent")

    p = add_verb(
        verbs,
        "remove-rule",
        remove_rule,
        "Remove a device access rule; every device is re-evaluated.",
        epilog=RULE_HELP,
    )
    p.add_argument("rule", metavar="RULE")


def find_rule(identity: str) -> DeviceAccessRule:
    identity = (identity or "").strip()
    rules = DeviceAccessRule.objects.all()
    if identity.isdigit():
        rule = rules.filter(pk=int(identity)).first()
        if rule is None:
            raise CliError(f"No device access rule with id {identity}.")
        return rule
    name = _NAME.fullmatch(identity)
    if name and name["characteristic"].lower() in _CHARACTERISTICS:
        rule = rules.filter(
            characteristic=_CHARACTERISTICS[name["characteristic"].lower()],
            query_key=name["query"].strip().lower(),
        ).first()
        if rule is not None:
            return rule
    matches = list(rules.filter(query_key=identity.lower()))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CliError(f"No device access rule {identity!r}.")
    names = ", ".join(f"'{rule_name(r.query_string, r.characteristic)}'" for r in matches)
    raise CliError(
        f"{len(matches)} rules have the query string {identity!r} ({names}):"
        " name one as 'QueryString (Characteristic)' or by its id."
    )


def rule_row(rule: DeviceAccessRule) -> dict:
    return {
        "id": rule.pk,
        "name": rule_name(rule.query_string, rule.characteristic),
        "characteristic": rule.characteristic,
        "query_string": rule.query_string,
        "access_level": rule.access_level,
        "created_by": rule.created_by.get_username() if rule.created_by else None,
        "created_at": rule.created_at,
    }


def get_rule(out, args) -> None:
    rules = DeviceAccessRule.objects.select_related("created_by")
    if args.rule is not None:
        rules = rules.filter(pk=find_rule(args.rule).pk)
    render(
        out,
        (rule_row(r) for r in rules),
        args.format,
        fields=FIELDS,
        empty="No device access rules.",
    )


def new_rule(out, args) -> None:
    result = actions.create_rule(
        CLI,
        characteristic=args.characteristic,
        query_string=args.query_string,
        access_level=args.access_level,
    )
    out.write(result.event.message)
    out.write(f"  id: {result.obj.pk}")


def set_rule(out, args) -> None:
    if args.access_level is None and args.query_string is None and args.characteristic is None:
        raise CliError(
            "set-rule: nothing to change; give --access-level, --query-string or --characteristic."
        )
    result = actions.update_rule(
        CLI,
        find_rule(args.rule),
        characteristic=args.characteristic,
        query_string=args.query_string,
        access_level=args.access_level,
    )
    print_result(out, result.event)


def remove_rule(out, args) -> None:
    result = actions.delete_rule(CLI, find_rule(args.rule))
    out.write(result.event.message)
