"""Demo data: mailboxes, logins, rules and devices in every access state.

The story the data tells, in the order it is built: the organisation ran on
the default Allow while its devices came in (the last 30 to 15 days); the
admin added two rules (Outlook allowed, the old Samsung SGH-* models
blocked), grandfathered the devices already syncing and switched the default
to Quarantine; since then new devices have waited in quarantine, the helpdesk
approved some and blocked others, one device is still in discovery, and one
mailbox (a leaver) had ActiveSync turned off.

Rules, mailbox lists and org settings change through devices.actions. The
devices themselves are bulk-inserted (the gate would have created them one by
one) and brought to their decided state by actions.reevaluate, tied to one
"demo.seed" audit event. The seeded past sends no mail: user mail is off and
there are no admin recipients until the end. Random choices come from a fixed
seed, so every demo looks the same; passwords come from `secrets`.
"""

import os
import random
import secrets
import string
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.utils import timezone

from . import actions
from .audit import SYSTEM, Actor, record
from .models import (
    AccessState,
    Characteristic,
    DeviceClass,
    DeviceStateChange,
    Mailbox,
    MobileDevice,
)
from .permissions import HELP_DESK_GROUP

DOMAIN = "example.com"
LOGIN_MAILBOXES = 12  # hashing a password costs ~0.25 s: later mailboxes get no login
_BATCH = 2000
_SEED = 2010  # the year Exchange got quarantine

PEOPLE = (
    ("anna.berg", "Anna Berg"),
    ("ben.okafor", "Ben Okafor"),
    ("carla.mendes", "Carla Mendes"),
    ("david.kim", "David Kim"),
    ("emma.lindqvist", "Emma Lindqvist"),
    ("farid.haddad", "Farid Haddad"),
    ("grace.liu", "Grace Liu"),
    ("ingrid.solberg", "Ingrid Solberg"),
    ("jonas.weber", "Jonas Weber"),
    ("keiko.tanaka", "Keiko Tanaka"),
    ("luis.ortega", "Luis Ortega"),
    ("hannes.vogel", "Hannes Vogel"),  # the last named mailbox is the leaver
)
# fmt: off
FIRST_NAMES = (
    "Aisha", "Alex", "Amir", "Beatriz", "Chloe", "Daniel", "Elena", "Erik", "Fatima",
    "Felix", "Hana", "Henrik", "Isabel", "Ivan", "James", "Julia", "Kai", "Lars", "Leila",
    "Maria", "Mateo", "Mia", "Nadia", "Noah", "Olga", "Omar", "Paula", "Pedro", "Priya",
    "Rafael", "Sara", "Sofia", "Tom", "Tuva", "Victor", "Yara", "Yusuf", "Zoe",
)
LAST_NAMES = (
    "Andersen", "Bakker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen",
    "Ito", "Jensen", "Kowalski", "Larsen", "Martin", "Nakamura", "Novak", "Olsen", "Petrov",
    "Quinn", "Rossi", "Santos", "Schmidt", "Silva", "Smith", "Svensson", "Tanaka", "Usman",
    "Varga", "Wagner", "Xu", "Yilmaz", "Zhang",
)
# fmt: on


@dataclass(frozen=True)
class Profile:
    """What one kind of device reports: the query string, User-Agent and DeviceInformation."""

    device_type: str
    device_model: str
    device_os: str
    user_agent: str
    eas_version: str
    id_style: str  # how its DeviceIds look: apple, samsung, android, hex
    friendly_name: str  # {first}: the owner's first name
    phone: bool  # has an IMEI, a phone number and an operator


IPHONE_OLD = Profile(
    "iPhone", "iPhone6C2", "iOS 8.1 12B411", "Apple-iPhone6C2/1202.411", "14.1", "apple",
    "{first}'s iPhone", True,
)  # fmt: skip
IPHONE = Profile(
    "iPhone", "iPhone15C2", "iOS 17.5.1 21F90", "Apple-iPhone15C2/2106.90", "16.1", "apple",
    "{first}'s iPhone", True,
)  # fmt: skip
IPAD = Profile(
    "iPad", "iPad7C3", "iOS 16.4 20E247", "Apple-iPad7C3/2005.247", "16.1", "apple",
    "{first}'s iPad", False,
)  # fmt: skip
OUTLOOK = Profile(
    "Outlook", "Outlook for iOS and Android", "Outlook for iOS and Android 1.0",
    "Outlook-iOS-Android/1.0", "16.1", "hex", "Outlook for iOS and Android", False,
)  # fmt: skip
GALAXY_NOTE2 = Profile(
    "SAMSUNGSGHI317M", "SGH-I317M", "Android 4.1.2", "SAMSUNG-SGH-I317M/101.403", "14.1",
    "samsung", "Galaxy Note II", True,
)  # fmt: skip
GALAXY_S21 = Profile(
    "SAMSUNGSMG991B", "SM-G991B", "Android 14", "Android-SAMSUNG-SM-G991B/101.1400.1", "16.1",
    "samsung", "Galaxy S21 5G", True,
)  # fmt: skip
PIXEL = Profile(
    "Android", "Pixel 7", "Android 14", "Android-Mail/2024.02.04.603131486.Release", "16.1",
    "android", "Pixel 7", True,
)  # fmt: skip
WINDOWS_MAIL = Profile(
    "WindowsMail", "WindowsMail", "Windows 10", "MSFT-WIN-3/10.0.19045", "16.1", "hex",
    "LAPTOP-{first}", False,
)  # fmt: skip

# Devices that no rule matches, and how common they are.
EVERYDAY = ((IPHONE, 30), (GALAXY_S21, 20), (PIXEL, 15), (IPAD, 12), (WINDOWS_MAIL, 8),
            (IPHONE_OLD, 5))  # fmt: skip
RULES = (
    (Characteristic.DEVICE_TYPE, "Outlook", "Allow"),
    (Characteristic.DEVICE_MODEL, "SGH-*", "Block"),
)
OPERATORS = ("Verizon", "T-Mobile", "AT&T", "Telenor", "Vodafone.de")
LANGUAGES = ("en-US", "en-US", "en-GB", "de-DE", "nb-NO", "fr-FR")
USER_MAIL_INSERT = (
    "New phones and tablets wait for approval by the IT helpdesk, usually within one"
    " working hour. Questions? Call the helpdesk on extension 4357."
)

# What each device is in the story: the first seven make sure every kind appears, then
# each kind gets its share of the total, and the rest are new devices.
OLD, NEW, OUTLOOK_APP, OLD_SAMSUNG, DISCOVERY = "old", "new", "outlook", "sgh", "discovery"
_FIRST_KINDS = (NEW, OLD, NEW, OUTLOOK_APP, OLD_SAMSUNG, DISCOVERY, NEW)
_SHARES = ((OLD, 0.40), (OUTLOOK_APP, 0.10), (OLD_SAMSUNG, 0.05), (DISCOVERY, 0.02))


def logins_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-logins.txt"


def seed_demo(
    *,
    mailboxes: int = 12,
    devices: int = 40,
    if_empty: bool = False,
    actor: Actor = SYSTEM,
) -> dict:
    """Fill an empty database; return what was made, {} when if_empty found mailboxes.

    Returns {"logins": {username: password}, "mailboxes": n, "devices": n,
    "states": {"Quarantined/Global": n, ...}}; the logins also go to
    var/demo-logins.txt (mode 0600).
    """
    if mailboxes < 1 or devices < 0:
        raise actions.ActionError("The demo needs at least one mailbox and no negative devices.")
    rng = random.Random(_SEED)
    with transaction.atomic():
        if Mailbox.objects.exists():
            if if_empty:
                return {}
            raise actions.ActionError(
                "The database already has mailboxes; seed-demo only fills an empty one."
            )
        event = record(
            actor,
            action="demo.seed",
            object_type="Demo",
            object_repr="Demo data",
            after={"mailboxes": mailboxes, "devices": devices},
            message=f"Demo data: {mailboxes} mailboxes, {devices} devices",
        )
        logins = _staff_logins()
        boxes, mailbox_logins = _mailboxes(actor, rng, mailboxes)
        logins.update(mailbox_logins)
        _devices(actor, rng, event, boxes, devices)
        states = Counter(
            {
                f"{state}/{reason}": n
                for state, reason, n in MobileDevice.objects.order_by()
                .values_list("access_state", "access_state_reason")
                .annotate(n=Count("pk"))
            }
        )
    _write_logins(logins)
    return {"logins": logins, "mailboxes": mailboxes, "devices": devices, "states": states}


def _password() -> str:
    return secrets.token_urlsafe(9)


def _staff_logins() -> dict[str, str]:
    """admin (superuser) and helpdesk (staff, Help Desk), unless those logins exist."""
    User = get_user_model()
    logins = {}
    if not User.objects.filter(username__iexact="admin").exists():
        logins["admin"] = _password()
        User.objects.create_superuser("admin", f"admin@{DOMAIN}", logins["admin"])
    if not User.objects.filter(username__iexact="helpdesk").exists():
        logins["helpdesk"] = _password()
        helpdesk = User.objects.create_user(
            "helpdesk", f"helpdesk@{DOMAIN}", logins["helpdesk"], is_staff=True
        )
        helpdesk.groups.add(Group.objects.get_or_create(name=HELP_DESK_GROUP)[0])
    return logins


def _people(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(alias, display name) pairs: the named people first, then generated ones."""
    people = list(PEOPLE[:count])
    used = Counter(alias for alias, _ in people)
    while len(people) < count:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        base = f"{first}.{last}".lower()
        used[base] += 1
        alias = base if used[base] == 1 else f"{base}{used[base]}"
        people.append((alias, f"{first} {last}"))
    return people


def _mailboxes(actor: Actor, rng: random.Random, count: int) -> tuple[list, dict[str, str]]:
    """The first LOGIN_MAILBOXES through create_mailbox with a login; the rest in bulk."""
    User = get_user_model()
    people = _people(rng, count)
    logins = {}
    for alias, name in people[:LOGIN_MAILBOXES]:
        password = None if User.objects.filter(username__iexact=alias).exists() else _password()
        actions.create_mailbox(
            actor, alias=alias, email=f"{alias}@{DOMAIN}", display_name=name, password=password
        )
        if password:
            logins[alias] = password
    Mailbox.objects.bulk_create(
        [
            Mailbox(alias=alias, primary_smtp_address=f"{alias}@{DOMAIN}", display_name=name)
            for alias, name in people[LOGIN_MAILBOXES:]
        ],
        batch_size=_BATCH,
    )
    boxes = list(Mailbox.objects.order_by("pk"))
    return boxes, logins


def _kinds(count: int) -> list[str]:
    kinds = list(_FIRST_KINDS[:count])
    for kind, share in _SHARES:
        kinds += [kind] * max(0, round(count * share) - kinds.count(kind))
    kinds = kinds[:count]
    return kinds + [NEW] * (count - len(kinds))


def _devices(actor: Actor, rng: random.Random, event, boxes: list, count: int) -> None:
    now = timezone.now()
    leaver = boxes[min(len(boxes), LOGIN_MAILBOXES) - 1] if len(boxes) > 1 else None
    factory = _DeviceFactory(rng, now)
    old, new = [], []
    for i, kind in enumerate(_kinds(count)):
        mailbox = boxes[i % len(boxes)] if i < len(boxes) else rng.choice(boxes)
        if mailbox is leaver and kind not in (OLD, NEW):  # keep the rare kinds visible
            mailbox = boxes[(boxes.index(mailbox) + 1) % len(boxes)]
        came_early = kind == OLD or (kind in (OUTLOOK_APP, OLD_SAMSUNG) and rng.random() < 0.5)
        device = factory.make(kind, mailbox, early=came_early)
        (old if came_early else new).append(device)

    actions.set_org_settings(actor, send_user_mail=False)
    # Under the default Allow, the first devices came in and were let through.
    _insert(old)
    actions.reevaluate(MobileDevice.objects.all(), event)
    MobileDevice.objects.update(state_changed_at=F("first_seen"))
    # The admin adds rules, grandfathers the devices syncing now, switches to Quarantine.
    for characteristic, query_string, level in RULES:
        actions.create_rule(
            actor, characteristic=characteristic, query_string=query_string, access_level=level
        )
    actions.grandfather_devices(actor)
    actions.set_org_settings(
        actor, default_access_level="Quarantine", user_mail_insert=USER_MAIL_INSERT
    )
    # Since then: new devices, decided when they first synced.
    _insert(new)
    actions.reevaluate(MobileDevice.objects.filter(access_state=AccessState.UNKNOWN), event)
    MobileDevice.objects.filter(first_seen__gte=factory.quarantine_since).update(
        state_changed_at=F("first_seen")
    )
    DeviceStateChange.objects.filter(event=event).update(
        time=Subquery(MobileDevice.objects.filter(pk=OuterRef("device")).values("first_seen"))
    )
    # The helpdesk works the quarantine list; a leaver's mailbox is turned off.
    waiting = list(
        MobileDevice.objects.filter(access_state=AccessState.QUARANTINED)
        .exclude(mailbox=leaver)
        .order_by("pk")
        .values_list("mailbox_id", "device_id")
    )
    approve = max(1, min(25, len(waiting) // 6)) if len(waiting) > 1 else 0
    block = max(1, min(10, len(waiting) // 12)) if len(waiting) > 2 else 0
    chosen = rng.sample(waiting, approve + block)
    owners = Mailbox.objects.in_bulk([mailbox_id for mailbox_id, _ in chosen])
    for n, (mailbox_id, device_id) in enumerate(chosen):
        decide = actions.allow_device if n < approve else actions.block_device
        decide(actor, owners[mailbox_id], device_id)
    if leaver is not None:
        actions.set_mailbox(actor, leaver, activesync_enabled=False)
    actions.set_org_settings(
        actor,
        send_user_mail=True,
        admin_mail_recipients=[f"helpdesk@{DOMAIN}", f"it-security@{DOMAIN}"],
    )


def _insert(devices: list[MobileDevice]) -> None:
    MobileDevice.objects.bulk_create(devices, batch_size=_BATCH)
    families = {(d.device_type, d.device_model) for d in devices if d.device_model}
    DeviceClass.objects.bulk_create(
        [DeviceClass(device_type=t, device_model=m) for t, m in sorted(families)],
        ignore_conflicts=True,
    )


class _DeviceFactory:
    """Makes unsaved MobileDevice rows with plausible ids, times and DeviceInformation."""

    def __init__(self, rng: random.Random, now):
        self.rng = rng
        self.now = now
        self.quarantine_since = now - timedelta(days=14, hours=1)
        self.ids: set[str] = set()

    def make(self, kind: str, mailbox: Mailbox, *, early: bool) -> MobileDevice:
        """early: first seen 30 to 15 days ago, under the default Allow."""
        rng = self.rng
        profile = {OUTLOOK_APP: OUTLOOK, OLD_SAMSUNG: GALAXY_NOTE2}.get(kind) or _weighted(
            rng, EVERYDAY
        )
        if kind == DISCOVERY:
            first_seen = self.now - timedelta(minutes=rng.uniform(1, 10))
            last_seen = first_seen + timedelta(seconds=rng.uniform(5, 50))
        elif early:
            first_seen = self.now - timedelta(days=rng.uniform(15, 30))
            last_seen = self.now - timedelta(hours=rng.uniform(0, 48))
        else:
            first_seen = self.now - timedelta(hours=rng.uniform(1, 14 * 24))
            last_seen = first_seen + (self.now - first_seen) * rng.uniform(0.5, 1)
        device_id = self._device_id(profile.id_style)
        device = MobileDevice(
            mailbox=mailbox,
            device_id=device_id,
            device_key=device_id.lower(),
            device_type=profile.device_type,
            user_agent=profile.user_agent,
            eas_version=profile.eas_version,
            first_seen=first_seen,
            last_seen=last_seen,
            state_changed_at=first_seen,
        )
        if kind != DISCOVERY:  # discovery: DeviceInformation has not arrived yet
            first_name = mailbox.display_name.split()[0]
            device.device_info_received = True
            device.device_model = profile.device_model
            device.device_os = profile.device_os
            device.device_os_language = rng.choice(LANGUAGES)
            device.friendly_name = profile.friendly_name.format(first=first_name)
            if profile.phone:
                device.imei = "35" + "".join(rng.choices(string.digits, k=13))
                device.phone_number = f"+1202555{rng.randint(100, 199):04d}"
                device.mobile_operator = rng.choice(OPERATORS)
        return device

    def _device_id(self, style: str) -> str:
        rng = self.rng
        while True:
            if style == "apple":
                device_id = "Appl" + "".join(
                    rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", k=12)
                )
            elif style == "samsung":
                device_id = "SEC" + "".join(rng.choices("0123456789ABCDEF", k=13))
            elif style == "android":
                device_id = "androidc" + "".join(rng.choices(string.digits, k=10))
            else:
                device_id = "".join(rng.choices("0123456789ABCDEF", k=32))
            if device_id not in self.ids:
                self.ids.add(device_id)
                return device_id


def _weighted(rng: random.Random, choices) -> Profile:
    profiles, weights = zip(*choices, strict=True)
    return rng.choices(profiles, weights=weights)[0]


def _write_logins(logins: dict[str, str]) -> None:
    """var/demo-logins.txt, readable by its owner only."""
    if not logins:
        return
    path = logins_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    width = max(len(username) for username in logins)
    lines = ["# ECP demo logins: username, password (created by `manage.py eas seed-demo`)"]
    lines += [f"{username.ljust(width)}  {password}" for username, password in logins.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode otherwise
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
