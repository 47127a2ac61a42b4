"""Import mailboxes and devices exported from Exchange, for a migration to the gate.

The rows are what `Get-CASMailbox | Export-Csv` and `Get-MobileDevice |
Export-Csv` write (devices.csv_import reads the file): dicts of column name
(any case) -> value, each with a `line` attribute when it came from a file.
Every row is checked first and every bad row reported with its line number;
one bad row and nothing is imported. Then the rows are written with bulk
inserts, the devices they can affect are re-evaluated set-based, and one
audit event tells who imported how many.

Lists are merged, as grandfathering merges them: a DeviceId already on one of
a mailbox's lists stays on that list.
"""

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .. import hostile, progress
from ..audit import Actor
from ..models import (
    AccessReason,
    AccessState,
    DeviceClass,
    DeviceIdList,
    Mailbox,
    MailboxDeviceId,
    MobileDevice,
)
from .base import CHUNK, ActionError, AuditAfter, Result, clean_device_id, clean_email
from .policies import resolve_policies
from .reevaluation import reevaluate

# Re-evaluate the touched mailboxes' devices by id up to this many mailboxes;
# beyond it every device (same outcome, set-based, and no endless IN list).
SCOPE_LIMIT = 10_000

# Export-Csv writes a multi-valued property as its .NET type name unless the
# command expands it: "System.String[]", "System.Collections.ArrayList",
# "Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]".
_TYPE_NAME = re.compile(r"(Deserialized\.)?(System|Microsoft)\.[\w.`\[\],]+")
_LIST_SEPARATORS = re.compile(r"[\s;,]+")
_DEVICE_FOLDER = "exchangeactivesyncdevices"
_TIME_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",  # en-US, Export-Csv's usual
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d.%m.%Y %H:%M:%S",  # de-DE and friends
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
)
_STATES = {s.lower(): s for s in AccessState.values}
_REASONS = {r.lower(): r for r in AccessReason.values}
_FIELD_COLUMNS = {  # MobileDevice field -> Get-MobileDevice columns, first non-empty wins
    "device_type": ("devicetype",),
    "device_model": ("devicemodel",),
    "device_os": ("deviceos",),
    "device_os_language": ("deviceoslanguage",),
    "user_agent": ("deviceuseragent",),
    "imei": ("deviceimei",),
    "friendly_name": ("friendlyname", "devicefriendlyname"),
    "mobile_operator": ("devicemobileoperator",),
    "phone_number": ("devicetelephonenumber",),
    "eas_version": ("clientversion",),
}
MAILBOX_COLUMNS = ("mailboxidentity", "user", "identity", "userdisplayname")


class ImportRowsError(ActionError):
    """Bad rows: nothing was imported. `errors` lists (line, problem) for every one."""

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = errors
        n = len(errors)
        details = "; ".join(f"line {line}: {problem}" for line, problem in errors)
        super().__init__(f"{n} bad row{'s' if n != 1 else ''}, nothing imported: {details}")


@dataclass
class ImportCounts:
    created: int = 0
    updated: int = 0
    allowed_device_ids: int = 0  # entries added to the allowed lists
    blocked_device_ids: int = 0  # entries added to the blocked lists

    @property
    def total(self) -> int:
        return self.created + self.updated


# ---------------------------------------------------------------------------
# reading a row


def _lowered(row: Mapping) -> dict[str, str]:
    return {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}


def _first(values: dict[str, str], *columns: str) -> str:
    for column in columns:
        if values.get(column):
            return values[column]
    return ""


def _line(row, index: int) -> int:
    return getattr(row, "line", None) or index + 1


def _prepare(rows: Iterable[Mapping], required: dict[str, tuple[str, ...]]):
    """(line, lower-cased values) per row, after checking the file has the columns."""
    prepared = [(_line(row, i), _lowered(row)) for i, row in enumerate(rows)]
    if not prepared:
        raise ActionError("Nothing to import: the file has no data rows.")
    columns = set().union(*(values for _, values in prepared))
    for name, alternatives in required.items():
        if not columns & set(alternatives):
            raise ActionError(
                f"The file has no {name} column; it has: {', '.join(sorted(columns))}."
            )
    return prepared


def _valid_alias(alias: str) -> bool:
    return 0 < len(alias) <= 64 and all(c.isalnum() or c in "._-" for c in alias)


def _segments(value: str) -> list[str]:
    return [s for s in re.split(r"[/\\]", value) if s]


def _bool(value: str, column: str, default: bool) -> bool:
    if not value:
        return default
    lowered = value.lower().lstrip("$")
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ActionError(f"{column} is {value!r}, not True or False.")


def _device_id_list(value: str, column: str) -> list[str]:
    value = value.strip()
    if not value:
        return []
    if _TYPE_NAME.fullmatch(value):
        raise ActionError(
            f"{column} reads {value!r}: Export-Csv wrote the type name, not the DeviceIds;"
            f" export it joined, e.g. Select-Object @{{n='{column}';e={{$_.{column} -join ';'}}}}"
        )
    value = value.strip("{}")
    return [clean_device_id(d) for d in _LIST_SEPARATORS.split(value) if d]


def parse_time(value: str) -> datetime | None:
    """FirstSyncTime as Export-Csv writes it: ISO, en-US or dotted European; None if empty."""
    value = value.strip()
    if not value:
        return None
    try:
        when = parse_datetime(value)
    except ValueError:  # well-formed but impossible, e.g. 2025-02-30
        when = None
    for fmt in _TIME_FORMATS:
        if when is not None:
            break
        try:
            when = datetime.strptime(value, fmt)  # naive: made aware below
        except ValueError:
            continue
    if when is None:
        raise ActionError(f"{value!r} is not a date and time (ISO, M/d/yyyy or d.M.yyyy).")
    return timezone.make_aware(when) if timezone.is_naive(when) else when


def _devices_of(mailbox_pks: list[int]) -> QuerySet:
    if len(mailbox_pks) > SCOPE_LIMIT:
        return MobileDevice.objects.all()
    return MobileDevice.objects.filter(mailbox_id__in=mailbox_pks)


def _existing_entries(mailbox_pks: list[int]) -> set[tuple[int, str]]:
    entries = set()
    for i in range(0, len(mailbox_pks), CHUNK):
        entries.update(
            MailboxDeviceId.objects.filter(mailbox_id__in=mailbox_pks[i : i + CHUNK]).values_list(
                "mailbox_id", "device_key"
            )
        )
    return entries


def _add_entries(wanted: list[tuple[int, str, str]], existing: set, counts: ImportCounts) -> None:
    """Put (mailbox pk, DeviceId, list) entries on the lists, leaving listed ones alone."""
    now = timezone.now()
    new = [
        MailboxDeviceId(
            mailbox_id=pk,
            device_id=device_id,
            device_key=device_id.lower(),
            list=kind,
            created_at=now,
        )
        for pk, device_id, kind in wanted
        if (pk, device_id.lower()) not in existing
    ]
    MailboxDeviceId.objects.bulk_create(new, batch_size=CHUNK)
    counts.allowed_device_ids = sum(e.list == DeviceIdList.ALLOWED for e in new)
    counts.blocked_device_ids = sum(e.list == DeviceIdList.BLOCKED for e in new)


def _raise_if(errors: list[tuple[int, str]]) -> None:
    if errors:
        raise ImportRowsError(sorted(errors))


# ---------------------------------------------------------------------------
# mailboxes (Get-CASMailbox)


@dataclass
class _MailboxRow:
    line: int
    alias: str
    email: str
    display_name: str
    activesync_enabled: bool | None
    allowed: list[str]
    blocked: list[str]


def _mailbox_alias(values: dict[str, str], address: str) -> str:
    """The Alias column, else SamAccountName, the last part of Identity or the address's.

    Get-CASMailbox has no Alias; its Identity is the object's name, often
    "Jane Doe". SamAccountName is the login the devices sign in with.
    """
    if values.get("alias"):
        if not _valid_alias(values["alias"]):
            raise ActionError(f"{values['alias']!r} is not a valid alias.")
        return values["alias"]
    identity = _segments(values.get("identity", ""))
    for candidate in (
        values.get("samaccountname", ""),
        identity[-1] if identity else "",
        address.partition("@")[0],
    ):
        if _valid_alias(candidate):
            return candidate
    raise ActionError("no usable alias in Alias, SamAccountName, Identity or PrimarySmtpAddress.")


def _read_mailbox(line: int, values: dict[str, str]) -> _MailboxRow:
    address = values.get("primarysmtpaddress", "")
    if address[:5].lower() == "smtp:":
        address = address[5:]
    if not address:
        raise ActionError("PrimarySmtpAddress is empty.")
    allowed = _device_id_list(
        values.get("activesyncalloweddeviceids", ""), "ActiveSyncAllowedDeviceIDs"
    )
    blocked = _device_id_list(
        values.get("activesyncblockeddeviceids", ""), "ActiveSyncBlockedDeviceIDs"
    )
    both = {d.lower() for d in allowed} & {d.lower() for d in blocked}
    if both:
        raise ActionError(f"DeviceId {', '.join(sorted(both))} is both allowed and blocked.")
    enabled = values.get("activesyncenabled", "")
    return _MailboxRow(
        line=line,
        alias=_mailbox_alias(values, address),
        email=clean_email(address),
        display_name=hostile.clean_line(_first(values, "displayname", "name"))[:256],
        activesync_enabled=_bool(enabled, "ActiveSyncEnabled", True) if enabled else None,
        allowed=allowed,
        blocked=blocked,
    )


@transaction.atomic
def import_mailboxes(actor: Actor, rows: Iterable[Mapping]) -> Result:
    """Create the file's mailboxes, update the ones that exist (same alias and address).

    Existing mailboxes get the file's display name and ActiveSync switch (when
    given) and its DeviceIds added to their lists. Returns a Result whose obj
    is the ImportCounts and count the number of mailboxes imported.
    """
    prepared = _prepare(
        rows,
        {
            "PrimarySmtpAddress": ("primarysmtpaddress",),
            "Alias (or Identity)": ("alias", "identity", "samaccountname"),
        },
    )
    by_alias = {
        a.lower(): (pk, a, e)
        for pk, a, e in Mailbox.objects.values_list("pk", "alias", "primary_smtp_address")
    }
    by_address = {e.lower(): a for _, a, e in by_alias.values()}
    errors, good, seen_alias, seen_address = [], [], {}, {}
    for line, values in prepared:
        try:
            row = _read_mailbox(line, values)
        except ActionError as exc:
            errors.append((line, str(exc)))
            continue
        alias_key, address_key = row.alias.lower(), row.email.lower()
        problem = ""
        if alias_key in seen_alias:
            problem = f"alias {row.alias} is also on line {seen_alias[alias_key]}."
        elif address_key in seen_address:
            problem = f"address {row.email} is also on line {seen_address[address_key]}."
        elif alias_key in by_alias and by_alias[alias_key][2].lower() != address_key:
            problem = (
                f"mailbox {by_alias[alias_key][1]} exists with the address"
                f" {by_alias[alias_key][2]}, not {row.email}."
            )
        elif address_key in by_address and by_address[address_key].lower() != alias_key:
            problem = f"address {row.email} belongs to mailbox {by_address[address_key]}."
        if problem:
            errors.append((line, problem))
            continue
        seen_alias[alias_key], seen_address[address_key] = line, line
        good.append(row)
    _raise_if(errors)
    progress.step(1, 5)

    counts = ImportCounts()
    new = [r for r in good if r.alias.lower() not in by_alias]
    old = [r for r in good if r.alias.lower() in by_alias]
    now = timezone.now()
    try:
        with transaction.atomic():
            Mailbox.objects.bulk_create(
                [
                    Mailbox(
                        alias=r.alias,
                        primary_smtp_address=r.email,
                        display_name=r.display_name or r.alias,
                        activesync_enabled=r.activesync_enabled is not False,
                        created_at=now,
                    )
                    for r in new
                ],
                batch_size=CHUNK,
            )
    except IntegrityError:
        raise ActionError(
            "Another change created some of these mailboxes meanwhile; nothing imported."
        ) from None
    counts.created, counts.updated = len(new), len(old)
    pks = {}
    aliases = [r.alias for r in new]
    for i in range(0, len(aliases), CHUNK):
        pks.update(
            (a.lower(), pk)
            for pk, a in Mailbox.objects.filter(alias__in=aliases[i : i + CHUNK]).values_list(
                "pk", "alias"
            )
        )
    new_pks = list(pks.values())
    for i in range(0, len(new_pks), CHUNK):
        resolve_policies(Mailbox.objects.filter(pk__in=new_pks[i : i + CHUNK]))

    changed = []
    for row in old:
        pk = by_alias[row.alias.lower()][0]
        pks[row.alias.lower()] = pk
        if row.display_name or row.activesync_enabled is not None:
            mailbox = Mailbox(pk=pk)
            fields = []
            if row.display_name:
                mailbox.display_name = row.display_name
                fields.append("display_name")
            if row.activesync_enabled is not None:
                mailbox.activesync_enabled = row.activesync_enabled
                fields.append("activesync_enabled")
            changed.append((mailbox, tuple(fields)))
    for fields in {f for _, f in changed}:
        Mailbox.objects.bulk_update(
            [m for m, f in changed if f == fields], list(fields), batch_size=CHUNK
        )

    old_pks = [pks[r.alias.lower()] for r in old]
    wanted = [
        (pks[r.alias.lower()], device_id, kind)
        for r in good
        for kind, ids in ((DeviceIdList.ALLOWED, r.allowed), (DeviceIdList.BLOCKED, r.blocked))
        for device_id in ids
    ]
    _add_entries(wanted, _existing_entries(old_pks), counts)
    audit = AuditAfter(
        actor,
        f"Imported {counts.total} mailbox{'es' if counts.total != 1 else ''}"
        f" ({counts.created} new, {counts.updated} updated)",
        action="mailboxes.import",
        object_type="Mailbox",
        object_repr=f"{counts.total} mailboxes",
        after=asdict(counts),
    )
    progress.step(1, 2)
    # New mailboxes have no partnerships yet: only the existing ones' can move.
    with progress.span(0.5, 1.0):
        transitions = reevaluate(_devices_of(old_pks), audit)
    return Result(obj=counts, event=audit(), transitions=transitions, count=counts.total)


# ---------------------------------------------------------------------------
# devices (Get-MobileDevice)


class _Mailboxes:
    """Finds the mailbox a device row names, from every mailbox loaded once."""

    def __init__(self):
        self.by_alias, self.by_address, self.by_name = {}, {}, {}
        for pk, alias, address, name in Mailbox.objects.values_list(
            "pk", "alias", "primary_smtp_address", "display_name"
        ):
            self.by_alias[alias.lower()] = pk
            self.by_address[address.lower()] = pk
            self.by_name.setdefault(name.lower(), []).append(pk)

    def find(self, name: str) -> int | None:
        key = name.strip().lower()
        if "@" in key:
            return self.by_address.get(key)
        if key in self.by_alias:
            return self.by_alias[key]
        named = self.by_name.get(key, [])
        return named[0] if len(named) == 1 else None

    def candidates(self, value: str) -> list[str]:
        """The names a column's value may give the mailbox by.

        A device's Identity is "contoso.com/Users/jdoe/ExchangeActiveSyncDevices/
        iPhone§Appl..." or "jdoe\\ExchangeActiveSyncDevices\\...": the part before
        the devices folder. UserDisplayName is "contoso.com/Users/Jane Doe".
        """
        parts = _segments(value)
        folder = [i for i, p in enumerate(parts) if p.lower() == _DEVICE_FOLDER]
        if folder:
            return [parts[folder[0] - 1]] if folder[0] else []
        return list(dict.fromkeys([value, *parts[-1:]]))

    def for_row(self, values: dict[str, str]) -> int:
        tried = []
        for column in MAILBOX_COLUMNS:
            if not values.get(column):
                continue
            for name in self.candidates(values[column]):
                pk = self.find(name)
                if pk is not None:
                    return pk
                tried.append(name)
        if not tried:
            raise ActionError("no mailbox named (UserDisplayName, Identity or MailboxIdentity).")
        names = ", ".join(dict.fromkeys(repr(t) for t in tried))
        raise ActionError(f"no mailbox {names}; import the mailboxes first.")


@dataclass
class _DeviceRow:
    line: int
    mailbox_pk: int
    device_id: str
    fields: dict
    first_seen: datetime | None
    last_seen: datetime | None
    state: str
    reason: str


def _read_device(line: int, values: dict[str, str], mailboxes: _Mailboxes) -> _DeviceRow:
    problems = []
    mailbox_pk = device_id = first_seen = last_seen = None
    try:
        mailbox_pk = mailboxes.for_row(values)
    except ActionError as exc:
        problems.append(str(exc))
    try:
        device_id = clean_device_id(values.get("deviceid", ""))
    except ActionError as exc:
        problems.append(str(exc))
    try:
        first_seen = parse_time(values.get("firstsynctime", ""))
        last_seen = parse_time(_first(values, "lastsuccesssync", "lastsyncattempttime"))
    except ActionError as exc:
        problems.append(f"FirstSyncTime {exc}")
    state = values.get("deviceaccessstate", "")
    if state and state.lower() not in _STATES:
        problems.append(f"DeviceAccessState {state!r} is not one of {', '.join(_STATES.values())}.")
    if problems:
        raise ActionError(" ".join(problems))
    fields = {}
    for field, columns in _FIELD_COLUMNS.items():
        value = hostile.clean_device_text(_first(values, *columns))
        if value:
            fields[field] = value[: MobileDevice._meta.get_field(field).max_length]
    return _DeviceRow(
        line=line,
        mailbox_pk=mailbox_pk,
        device_id=device_id,
        fields=fields,
        first_seen=first_seen,
        last_seen=last_seen,
        state=_STATES.get(state.lower(), AccessState.UNKNOWN),
        reason=_REASONS.get(values.get("deviceaccessstatereason", "").lower(), AccessReason.GLOBAL),
    )


def _list_for(row: _DeviceRow, approve: bool) -> str | None:
    """Which of its mailbox's lists an imported device goes on, if any.

    Exchange's own per-mailbox lists are mirrored: Allowed / Individual and
    Blocked / Individual. --approve allows every other device too, except a
    blocked one: an import never lets in a device Exchange keeps out.
    """
    individual = row.reason == AccessReason.INDIVIDUAL
    if row.state == AccessState.BLOCKED:
        return DeviceIdList.BLOCKED if individual else None
    if approve or (row.state == AccessState.ALLOWED and individual):
        return DeviceIdList.ALLOWED
    return None


@transaction.atomic
def import_devices(actor: Actor, rows: Iterable[Mapping], *, approve: bool = False) -> Result:
    """Create the file's partnerships (or update the details of known ones), then decide them.

    A new partnership starts in the state Exchange reported (so that only a
    device whose state changes here is mailed about), with FirstSyncTime as
    first seen; the engine then decides it like any other.
    """
    prepared = _prepare(
        rows,
        {
            "DeviceId": ("deviceid",),
            "UserDisplayName (or Identity)": MAILBOX_COLUMNS,
        },
    )
    mailboxes = _Mailboxes()
    errors, good, seen = [], [], {}
    for line, values in prepared:
        try:
            row = _read_device(line, values, mailboxes)
        except ActionError as exc:
            errors.append((line, str(exc)))
            continue
        key = (row.mailbox_pk, row.device_id.lower())
        if key in seen:
            errors.append((line, f"DeviceId {row.device_id} is also on line {seen[key]}."))
            continue
        seen[key] = line
        good.append(row)
    _raise_if(errors)
    progress.step(1, 5)

    counts = ImportCounts()
    mailbox_pks = sorted({r.mailbox_pk for r in good})
    known = {}
    for i in range(0, len(mailbox_pks), CHUNK):
        for device in MobileDevice.objects.filter(mailbox_id__in=mailbox_pks[i : i + CHUNK]):
            known[(device.mailbox_id, device.device_key)] = device
    now = timezone.now()
    new, updated = [], []
    for row in good:
        device = known.get((row.mailbox_pk, row.device_id.lower()))
        if device is None:
            first_seen = row.first_seen or now
            new.append(
                MobileDevice(
                    mailbox_id=row.mailbox_pk,
                    device_id=row.device_id,
                    device_key=row.device_id.lower(),
                    device_info_received=bool(
                        row.fields.get("device_model") or row.fields.get("device_os")
                    ),
                    first_seen=first_seen,
                    last_seen=row.last_seen or first_seen,
                    access_state=row.state,
                    access_state_reason=row.reason,
                    state_changed_at=first_seen,
                    **row.fields,
                )
            )
        else:
            for field, value in row.fields.items():
                setattr(device, field, value)
            updated.append(device)
    try:
        with transaction.atomic():
            MobileDevice.objects.bulk_create(new, batch_size=CHUNK)
    except IntegrityError:
        raise ActionError(
            "Some of these devices synced through the gate while importing; nothing imported."
        ) from None
    fields = list(_FIELD_COLUMNS)
    MobileDevice.objects.bulk_update(updated, fields, batch_size=CHUNK // len(fields))
    counts.created, counts.updated = len(new), len(updated)
    DeviceClass.objects.bulk_create(
        [
            DeviceClass(device_type=t, device_model=m, last_seen=now)
            for t, m in sorted({(d.device_type, d.device_model) for d in new})
            if t
        ],
        batch_size=CHUNK,
        ignore_conflicts=True,
    )
    wanted = [
        (r.mailbox_pk, r.device_id, kind)
        for r in good
        if (kind := _list_for(r, approve)) is not None
    ]
    _add_entries(wanted, _existing_entries(mailbox_pks), counts)
    audit = AuditAfter(
        actor,
        f"Imported {counts.total} device{'s' if counts.total != 1 else ''}"
        f" ({counts.created} new, {counts.updated} updated"
        f"{', approved' if approve else ''})",
        action="devices.import",
        object_type="MobileDevice",
        object_repr=f"{counts.total} devices",
        after={**asdict(counts), "approve": approve},
    )
    progress.step(1, 2)
    with progress.span(0.5, 1.0):
        transitions = reevaluate(_devices_of(mailbox_pks), audit)
    return Result(obj=counts, event=audit(), transitions=transitions, count=counts.total)


# ---------------------------------------------------------------------------
# the dry run of the import page: what each line would do, before anything is written


@dataclass
class LineOutcome:
    line: int
    name: str  # the mailbox's alias, or the device's DeviceId
    mailbox: str = ""  # a device's mailbox (alias)
    outcome: str = ""  # "create", "update" or "reject"
    problem: str = ""
    state_before: str = ""  # a device's access state now ("" for a new one)
    state_after: str = ""  # ... and after the import


@dataclass
class ImportPreview:
    lines: list[LineOutcome]
    error: str = ""  # the file as a whole cannot be imported (no data, a missing column)
    counts: ImportCounts | None = None
    moves: Counter = dataclass_field(default_factory=Counter)  # (from state, to state) -> devices

    @property
    def rejected(self) -> list[LineOutcome]:
        return [o for o in self.lines if o.outcome == "reject"]

    @property
    def ok(self) -> bool:
        return not self.error and not self.rejected

    def number(self, outcome: str) -> int:
        return sum(o.outcome == outcome for o in self.lines)


class _Rollback(Exception):
    pass


def _outline_mailboxes(prepared) -> list[LineOutcome]:
    existing = {a.lower() for a in Mailbox.objects.values_list("alias", flat=True)}
    lines = []
    for line, values in prepared:
        try:
            row = _read_mailbox(line, values)
        except ActionError as exc:
            name = values.get("alias") or values.get("primarysmtpaddress", "")
            lines.append(LineOutcome(line, name, outcome="reject", problem=str(exc)))
            continue
        known = row.alias.lower() in existing
        lines.append(LineOutcome(line, row.alias, outcome="update" if known else "create"))
    return lines


def _outline_devices(prepared) -> tuple[list[LineOutcome], dict]:
    mailboxes = _Mailboxes()
    aliases = {pk: alias for alias, pk in mailboxes.by_alias.items()}
    lines, where = [], {}
    for line, values in prepared:
        try:
            row = _read_device(line, values, mailboxes)
        except ActionError as exc:
            name = values.get("deviceid", "")
            lines.append(LineOutcome(line, name, outcome="reject", problem=str(exc)))
            continue
        where[(row.mailbox_pk, row.device_id.lower())] = len(lines)
        lines.append(LineOutcome(line, row.device_id, mailbox=aliases.get(row.mailbox_pk, "")))
    return lines, where


def _device_states(keys) -> dict:
    pks = sorted({pk for pk, _ in keys})
    states = {}
    for i in range(0, len(pks), CHUNK):
        states.update(
            ((m, k), s)
            for m, k, s in MobileDevice.objects.filter(
                mailbox_id__in=pks[i : i + CHUNK]
            ).values_list("mailbox_id", "device_key", "access_state")
        )
    return {key: states[key] for key in keys if key in states}


def preview_import(actor: Actor, kind: str, rows: list, *, approve: bool = False) -> ImportPreview:
    """Import the rows and roll everything back (rows, audit, outbox): each line's outcome.

    A bad line is reported with its problem, and then nothing would be imported; a
    problem of the whole file (no data rows, a missing column) is the preview's error.
    """
    try:
        prepared = _prepare(
            rows,
            {
                "PrimarySmtpAddress": ("primarysmtpaddress",),
                "Alias (or Identity)": ("alias", "identity", "samaccountname"),
            }
            if kind == "mailboxes"
            else {"DeviceId": ("deviceid",), "UserDisplayName (or Identity)": MAILBOX_COLUMNS},
        )
    except ActionError as exc:
        return ImportPreview(lines=[], error=str(exc))
    if kind == "mailboxes":
        lines, where = _outline_mailboxes(prepared), {}
    else:
        lines, where = _outline_devices(prepared)
    before = _device_states(where)
    for key, index in where.items():
        lines[index].outcome = "update" if key in before else "create"
        lines[index].state_before = before.get(key, "")
    found = ImportPreview(lines=lines)
    try:
        with transaction.atomic():
            if kind == "mailboxes":
                result = import_mailboxes(actor, rows)
            else:
                result = import_devices(actor, rows, approve=approve)
            found.counts = result.obj
            found.moves = Counter(
                (t.from_state, t.to_state) for t in result.transitions if t.from_state != t.to_state
            )
            after = _device_states(where)
            raise _Rollback
    except _Rollback:
        pass
    except ImportRowsError as exc:
        # Lines fine on their own may clash with another (the same alias twice, ...).
        by_line = {o.line: o for o in lines}
        for line, problem in exc.errors:
            outcome = by_line.get(line)
            if outcome is not None:
                outcome.outcome, outcome.problem = "reject", problem
        return found
    except ActionError as exc:
        found.error = str(exc)
        return found
    for key, index in where.items():
        lines[index].state_after = after.get(key, "")
    return found
