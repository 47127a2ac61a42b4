"""get-device, allow-device, block-device, remove-device (Get/Remove-MobileDevice)."""

from devices import actions
from devices.models import MobileDevice

from . import CLI, CliError, add_verb, find_mailbox, rule_name
from .output import add_format_option, render

FIELDS = (
    "mailbox",
    "device_id",
    "device_type",
    "device_model",
    "device_os",
    "device_os_language",
    "user_agent",
    "imei",
    "phone_number",
    "friendly_name",
    "mobile_operator",
    "eas_version",
    "device_info_received",
    "access_state",
    "access_state_reason",
    "access_rule",
    "access_policy",
    "first_seen",
    "last_seen",
    "state_changed_at",
    "owner_answer",  # "Was this you?": mine, not-mine or empty
    "owner_answered_at",
)
TABLE = (
    "mailbox",
    "device_id",
    "device_type",
    "device_model",
    "device_os",
    "access_state",
    "access_state_reason",
    "access_rule",
    "first_seen",
    "last_seen",
)
_COLUMNS = tuple(f for f in FIELDS if f not in ("mailbox", "access_rule", "access_policy")) + (
    "mailbox__alias",
    "access_rule__query_string",
    "access_rule__characteristic",
    "access_policy__name",
)


def register(verbs) -> None:
    p = add_verb(verbs, "get-device", get_device, "List devices (partnerships).")
    p.add_argument("--mailbox", metavar="ALIAS", help="only this mailbox's devices")
    p.add_argument(
        "--state",
        metavar="STATE",
        help="only devices in this access state: Allowed, Blocked, Quarantined,"
        " DeviceDiscovery or Unknown (any case)",
    )
    add_format_option(p)

    for name, handler, help in (
        (
            "allow-device",
            allow_device,
            "Put a DeviceId on the mailbox's allowed list (and off its blocked list):"
            " the device becomes Allowed / Individual.",
        ),
        (
            "block-device",
            block_device,
            "Put a DeviceId on the mailbox's blocked list (and off its allowed list):"
            " the device becomes Blocked / Individual.",
        ),
        (
            "remove-device",
            remove_device,
            "Remove a partnership; the device starts over if it syncs again.",
        ),
    ):
        p = add_verb(verbs, name, handler, help)
        p.add_argument("device_id", metavar="ID")
        p.add_argument("--mailbox", required=True, metavar="ALIAS")


def device_rows(devices):
    for values in devices.values(*_COLUMNS).iterator(chunk_size=2000):
        query_string = values.pop("access_rule__query_string")
        characteristic = values.pop("access_rule__characteristic")
        values["mailbox"] = values.pop("mailbox__alias")
        values["access_rule"] = rule_name(query_string, characteristic) if query_string else None
        values["access_policy"] = values.pop("access_policy__name")
        yield {f: values[f] for f in FIELDS}


def get_device(out, args) -> None:
    devices = MobileDevice.objects.all()
    if args.state is not None:
        devices = devices.filter(access_state=actions.parse_access_state(args.state))
    if args.mailbox is not None:
        devices = devices.filter(mailbox=find_mailbox(args.mailbox))
    render(
        out,
        device_rows(devices),
        args.format,
        fields=FIELDS,
        table=TABLE,
        empty="No devices.",
    )


def allow_device(out, args) -> None:
    result = actions.allow_device(CLI, find_mailbox(args.mailbox), args.device_id)
    out.write(result.event.message)


def block_device(out, args) -> None:
    result = actions.block_device(CLI, find_mailbox(args.mailbox), args.device_id)
    out.write(result.event.message)


def remove_device(out, args) -> None:
    mailbox = find_mailbox(args.mailbox)
    device = MobileDevice.objects.filter(
        mailbox=mailbox, device_key=args.device_id.strip().lower()
    ).first()
    if device is None:
        raise CliError(f"Mailbox {mailbox.alias} has no device {args.device_id!r}.")
    result = actions.remove_device(CLI, device)
    out.write(result.event.message)
