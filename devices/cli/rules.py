"""get-rule, new-rule, set-rule, remove-rule (*-ActiveSyncDeviceAccessRule), and
test-device: which rule or default would decide a device like this one, and why.

A rule is named like Exchange names it, "QueryString (Characteristic)", e.g.
"iPhone (DeviceType)", or by its numeric id (a plain number is always an id).
A bare query string works too when only one rule has it.
"""

import re

from devices import actions
from devices.explain import explain_device
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
QUERY_HELP = (
    "The query string matches case-insensitively; '*' is a wildcard. On DeviceOS and"
    " UserAgent it may compare versions, FAMILY OP VERSION with OP one of <, <=, >, >=:"
    " 'iOS < 17' matches 'iOS 16.7.10 20H350' (numbers compare part by part), 'Android <= 12'"
    " matches 'SAMSUNG SM-G991B/Android 12'; on UserAgent the family is the product before"
    " its '/', 'Outlook-iOS-Android < 4' matches 'Outlook-iOS-Android/3.1'. Within a"
    " characteristic the most restrictive matching rule wins, exact, glob or version alike."
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
        epilog=QUERY_HELP,
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

    p = add_verb(
        verbs,
        "test-device",
        run_test_device,
        "Which rule or default would decide a device like this one, and why (records nothing).",
        epilog="As on the device's first request, for a mailbox with ActiveSync on and the"
        " device on neither of its lists. " + QUERY_HELP,
    )
    p.add_argument("--device-type", default="", metavar="T")
    p.add_argument("--device-model", default="", metavar="M")
    p.add_argument("--device-os", default="", metavar="OS")
    p.add_argument("--user-agent", default="", metavar="UA")
    p.add_argument(
        "--no-device-information",
        action="store_true",
        help="the device has not sent its DeviceInformation (model and OS) yet",
    )
    add_format_option(p)


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


TEST_FIELDS = ("characteristic", "matches", "text")


def run_test_device(out, args) -> None:
    data = {
        "device_type": args.device_type.strip(),
        "device_model": args.device_model.strip(),
        "device_os": args.device_os.strip(),
        "user_agent": args.user_agent.strip(),
        "info_received": not args.no_device_information,
    }
    if not any(data[k] for k in ("device_type", "device_model", "device_os", "user_agent")):
        raise CliError(
            "test-device: give at least one of --device-type, --device-model, --device-os, "
            "--user-agent."
        )
    result = explain_device(data)
    decision, rule = result["decision"], result["rule"]
    steps = [
        {"characteristic": s["characteristic"], "matches": s["match"], "text": s["text"]}
        for s in result["steps"]
    ]
    if args.format == "json":
        row = {
            "access_state": decision.state,
            "access_state_reason": decision.reason,
            "rule": rule_name(rule.query_string, rule.characteristic) if rule else None,
            "rule_id": rule.pk if rule else None,
            "why": result["why"],
            "steps": steps,
        }
        render(out, [row], "json", fields=())
        return
    if args.format == "csv":
        last = {"characteristic": "decision", "matches": decision.state, "text": result["why"]}
        render(out, [*steps, last], "csv", fields=TEST_FIELDS)
        return
    out.write(f"Result: {decision.state} ({decision.reason})")
    out.write(result["why"])
    for i, step in enumerate(steps, 1):
        out.write(f"  {i}. {step['characteristic']}: {step['text']}")
