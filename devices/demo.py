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

At scale (issue 8: 100,000 mailboxes, 1,000,000 partnerships) only the first
STORY_DEVICES devices live through that story. The rest are loaded in bulk
(COPY on PostgreSQL, bulk_create elsewhere) in the state the engine decides
for them under the story's final rules and settings: most were grandfathered
or approved by the helpdesk (their mailbox's allowed list), about 2% still
wait in quarantine, a few are blocked by the helpdesk or by the SGH-* rule,
and a few leavers' mailboxes have ActiveSync turned off. Each profile is
decided once with devices.access; a random sample is checked against the
engine again afterwards, from what the database holds.
"""

import os
import random
import re
import secrets
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.utils import timezone

from . import access, actions, bulk
from .audit import SYSTEM, Actor, record
from .evaluation import device_facts, load_rules, mailbox_facts, org_facts
from .models import (
    AccessReason,
    AccessState,
    Characteristic,
    DeviceClass,
    DeviceIdList,
    DeviceStateChange,
    Mailbox,
    MailboxDeviceId,
    MobileDevice,
    OrgSettings,
)
from .permissions import HELP_DESK_GROUP

DOMAIN = "example.com"
LOGIN_MAILBOXES = 12  # hashing a password costs ~0.25 s: later mailboxes get no login
STORY_DEVICES = 40  # devices that live through the story; the rest are loaded in bulk
_BATCH = 2000
_SEED = 2010  # the year Exchange got quarantine
_VERIFY_SAMPLE = 500  # bulk-loaded devices checked against the engine afterwards

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
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Fill an empty database; return what was made, {} when if_empty found mailboxes.

    Returns {"logins": {username: password}, "mailboxes": n, "devices": n,
    "states": {"Quarantined/Global": n, ...}}; the logins also go to
    var/demo-logins.txt (mode 0600). `progress`, when given, is told each
    step and how long it took.
    """
    if mailboxes < 1 or devices < 0:
        raise actions.ActionError("The demo needs at least one mailbox and no negative devices.")
    rng = random.Random(_SEED)
    step = _Steps(progress)
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
        step(f"{mailboxes} mailboxes")
        _devices(actor, rng, event, boxes, min(devices, STORY_DEVICES))
        step(f"{min(devices, STORY_DEVICES)} devices through the story")
        if devices > STORY_DEVICES:
            _bulk_devices(event, devices - STORY_DEVICES, step)
        states = Counter(
            {
                f"{state}/{reason}": n
                for state, reason, n in MobileDevice.objects.order_by()
                .values_list("access_state", "access_state_reason")
                .annotate(n=Count("pk"))
            }
        )
        step("counted the states")
    _write_logins(logins)
    return {"logins": logins, "mailboxes": mailboxes, "devices": devices, "states": states}


class _Steps:
    """Reports each step with its duration, when someone listens."""

    def __init__(self, listener: Callable[[str], None] | None):
        self.listener = listener
        self.start = self.last = time.monotonic()

    def __call__(self, what: str) -> None:
        now = time.monotonic()
        if self.listener is not None:
            self.listener(f"{what}: {now - self.last:.1f} s (total {now - self.start:.1f} s)")
        self.last = now


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
    now = timezone.now()
    bulk.insert(
        Mailbox,
        ("alias", "primary_smtp_address", "display_name", "activesync_enabled")
        + ("access_policy_pinned", "created_at"),
        (
            (alias, f"{alias}@{DOMAIN}", name, not _leaver(n), False, now)
            for n, (alias, name) in enumerate(people[LOGIN_MAILBOXES:], LOGIN_MAILBOXES)
        ),
    )
    # The story needs no more mailboxes than it has devices.
    boxes = list(Mailbox.objects.order_by("pk")[:STORY_DEVICES])
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


# ---------------------------------------------------------------------------
# At scale: the devices beyond the story, loaded in bulk in their decided state.

LEAVER_EVERY = 33  # beyond the first hundred, one mailbox in 33 is a leaver's: ActiveSync off
GRANDFATHERED, APPROVED, WAITING = "grandfathered", "approved", "waiting"
HELPDESK_BLOCKED = "blocked-by-helpdesk"
# Shares of the bulk devices; the rest were approved by the helpdesk. About 2% wait in
# quarantine, as in a steady organisation; Outlook is 10% (benchmark 4 moves them all).
BULK_SHARES = (
    (GRANDFATHERED, 0.45),
    (OUTLOOK_APP, 0.10),
    (OLD_SAMSUNG, 0.01),
    (HELPDESK_BLOCKED, 0.005),
    (WAITING, 0.02),
    (DISCOVERY, 0.001),
)
_IOS = (
    ("16.7.10", "20H350"), ("17.5.1", "21F90"), ("17.6.1", "21G93"), ("18.1.1", "22B91"),
    ("18.3.2", "22D82"), ("18.5", "22F76"),
)  # fmt: skip
_APPLE_BUILD = re.compile(r"(\d+)([A-Z])(\d+)")


def _leaver(n: int) -> bool:
    """Whether the n-th mailbox (from 0) belongs to a leaver, with ActiveSync turned off."""
    return n >= 100 and n % LEAVER_EVERY == 0


def _apple(base: Profile, models, releases) -> list[Profile]:
    """Apple's User-Agent carries the OS build: 21F90 -> 2106.90 (F is the 6th letter)."""
    variants = []
    for model in models:
        for version, build in releases:
            major, letter, number = _APPLE_BUILD.fullmatch(build).groups()
            agent = f"Apple-{model}/{major}{ord(letter) - 64:02d}.{number}"
            variants.append(
                replace(
                    base, device_model=model, device_os=f"iOS {version} {build}", user_agent=agent
                )
            )
    return variants


def _samsung(base: Profile, models, androids, agents) -> list[Profile]:
    return [
        replace(
            base,
            device_type="SAMSUNG" + model.replace("-", ""),
            device_model=model,
            device_os=f"Android {android}",
            user_agent=agent.format(model=model),
            friendly_name=name,
        )
        for model, name in models
        for android in androids
        for agent in agents
    ]


def _catalogue() -> tuple[list[Profile], list[float], list[Profile]]:
    """The everyday profiles with their weights, and the old Samsung SGH-* profiles."""
    families = (
        (_apple(IPHONE, ("iPhone12C1", "iPhone13C2", "iPhone14C2", "iPhone14C5", "iPhone15C2",
                         "iPhone15C4", "iPhone16C1", "iPhone17C1"), _IOS), 34),
        (_apple(IPAD, ("iPad7C3", "iPad13C1", "iPad14C3"), _IOS[:4]), 12),
        (_apple(IPHONE_OLD, ("iPhone6C2", "iPhone7C2"), (("8.1", "12B411"),)), 3),
        (_samsung(GALAXY_S21, (("SM-G991B", "Galaxy S21 5G"), ("SM-S911B", "Galaxy S23"),
                               ("SM-A546B", "Galaxy A54 5G"), ("SM-S928B", "Galaxy S24 Ultra")),
                  ("13", "14"), ("Android-SAMSUNG-{model}/101.1300.2",
                                 "Android-SAMSUNG-{model}/101.1400.1")), 20),
        ([replace(PIXEL, device_model=model, device_os=f"Android {android}", friendly_name=model,
                  user_agent=agent)
          for model in ("Pixel 6", "Pixel 7", "Pixel 8 Pro", "Pixel 9")
          for android in ("13", "14", "15")
          for agent in ("Android-Mail/2024.02.04.603131486.Release",
                        "Android-Mail/2025.01.12.713522094.Release")], 14),
        ([replace(WINDOWS_MAIL, device_os=os_name, user_agent=agent)
          for os_name, agent in (("Windows 10", "MSFT-WIN-3/10.0.19045"),
                                 ("Windows 11", "MSFT-WIN-3/10.0.22631"),
                                 ("Windows 11", "MSFT-WIN-3/10.0.26100"))], 8),
    )  # fmt: skip
    profiles, weights = [], []
    for variants, weight in families:
        profiles += variants
        weights += [weight / len(variants)] * len(variants)
    old_samsungs = _samsung(
        GALAXY_NOTE2,
        (("SGH-I317M", "Galaxy Note II"), ("SGH-I337M", "Galaxy S4"), ("SGH-T999", "Galaxy S III")),
        ("4.1.2", "4.3"),
        ("SAMSUNG-{model}/101.403",),
    )
    return profiles, weights, old_samsungs


def _bulk_kinds(rng: random.Random, count: int) -> list[str]:
    kinds = []
    for kind, share in BULK_SHARES:
        kinds += [kind] * round(count * share)
    kinds = kinds[:count]
    kinds += [APPROVED] * (count - len(kinds))
    rng.shuffle(kinds)
    return kinds


# Columns of a bulk-loaded device, in the order _bulk_rows yields them.
DEVICE_COLUMNS = (
    "mailbox_id", "device_id", "device_key", "device_type", "device_model", "device_os",
    "device_os_language", "user_agent", "imei", "phone_number", "friendly_name",
    "mobile_operator", "eas_version", "device_info_received", "first_seen", "last_seen",
    "access_state", "access_state_reason", "access_rule_id", "access_policy_id",
    "state_changed_at",
)  # fmt: skip
LIST_COLUMNS = ("mailbox_id", "device_id", "device_key", "list", "created_at")


def _bulk_devices(event, count: int, step) -> None:
    """Load `count` devices beyond the story, each in the state the engine decides for it."""
    rng = random.Random(_SEED + 1)  # independent of the story's draws
    now = timezone.now()
    org = OrgSettings.load()
    rules, facts = load_rules(), org_facts(org)
    last_story_device = MobileDevice.objects.order_by("-pk").values_list("pk", flat=True).first()
    mailboxes = list(
        Mailbox.objects.order_by("pk").values_list("pk", "display_name", "activesync_enabled")
    )
    active = [m for m in mailboxes if m[2]]
    entries: list[tuple] = []  # the mailboxes' allowed and blocked lists
    families: set[tuple[str, str]] = set()
    factory = _DeviceFactory(rng, now)
    factory.ids.update(MobileDevice.objects.values_list("device_id", flat=True))
    decide = _ProfileDecisions(rules, facts, now)
    rows = _bulk_rows(rng, now, count, mailboxes, active, factory, decide, entries, families)
    loaded = bulk.insert(MobileDevice, DEVICE_COLUMNS, rows)
    step(f"{loaded} devices loaded ({len(decide.cache)} distinct profiles decided)")
    bulk.insert(MailboxDeviceId, LIST_COLUMNS, entries)
    DeviceClass.objects.bulk_create(
        [DeviceClass(device_type=t, device_model=m) for t, m in sorted(families)],
        ignore_conflicts=True,
    )
    step(f"{len(entries)} allowed and blocked list entries loaded")
    _bulk_history(event, after_pk=last_story_device or 0)
    step("state history written")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (Mailbox, MobileDevice, MailboxDeviceId, DeviceStateChange):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        step("analyzed")
    _verify_sample(rng, after_pk=last_story_device or 0, rules=rules, org=facts)
    step(f"a sample of {_VERIFY_SAMPLE} checked against the engine")


class _ProfileDecisions:
    """access.decide once per profile: everything the engine reads, but the DeviceId itself."""

    def __init__(self, rules: access.RuleSet, org: access.OrgFacts, now):
        self.rules, self.org, self.now = rules, org, now
        self.cache: dict[tuple, access.Decision] = {}

    def __call__(self, enabled: bool, listed: str, key: str, profile: Profile, info, first_seen):
        in_window = self.now - first_seen < self.org.discovery_window
        org_listed = key in self.org.allowed_ids
        cache_key = (enabled, listed, org_listed, profile, info, in_window)
        decision = self.cache.get(cache_key)
        if decision is None:
            mailbox = access.MailboxFacts(
                activesync_enabled=enabled,
                allowed_ids=frozenset({key}) if listed == DeviceIdList.ALLOWED else frozenset(),
                blocked_ids=frozenset({key}) if listed == DeviceIdList.BLOCKED else frozenset(),
            )
            device = access.DeviceFacts(
                device_id=key,
                device_type=profile.device_type,
                device_model=profile.device_model if info else "",
                device_os=profile.device_os if info else "",
                user_agent=profile.user_agent,
                info_received=info,
                first_seen=first_seen,
            )
            decision = access.decide(mailbox, device, self.rules, self.org, self.now)
            self.cache[cache_key] = decision
        return decision


def _bulk_rows(rng, now, count, mailboxes, active, factory, decide, entries, families):
    """Yield one device row per bulk device; collect list entries and device families."""
    everyday, weights, old_samsungs = _catalogue()
    cumulative, total = [], 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    picks = rng.choices(everyday, cum_weights=cumulative, k=count)
    first_names = {pk: (name.split() or ["User"])[0] for pk, name, _ in mailboxes}
    hour, day = timedelta(hours=1), timedelta(days=1)
    uniform, randint, choice, choices = rng.uniform, rng.randint, rng.choice, rng.choices
    for kind, profile in zip(_bulk_kinds(rng, count), picks, strict=True):
        # Only the grandfathered (old) devices sit in leavers' mailboxes.
        mailbox_pk, _, enabled = choice(mailboxes if kind == GRANDFATHERED else active)
        if kind == OUTLOOK_APP:
            profile = OUTLOOK
        elif kind == OLD_SAMSUNG:
            profile = choice(old_samsungs)
        info = kind != DISCOVERY
        if kind == GRANDFATHERED or (kind == OUTLOOK_APP and uniform(0, 1) < 0.5):
            first_seen = now - timedelta(days=uniform(15, 730))
            last_seen = now - timedelta(hours=uniform(0, 48))
            changed = first_seen if enabled else max(first_seen, now - uniform(1, 14) * day)
        elif kind == DISCOVERY:
            first_seen = now - timedelta(minutes=uniform(1, 8))
            last_seen = changed = first_seen
        else:
            first_seen = now - uniform(1, 14 * 24) * hour
            last_seen = first_seen + (now - first_seen) * uniform(0.5, 1)
            changed = first_seen
            if kind in (APPROVED, HELPDESK_BLOCKED):  # the helpdesk took a while
                changed = min(now, first_seen + uniform(0.1, 8) * hour)
            elif kind == WAITING:  # DeviceInformation came a few seconds after first contact
                changed = first_seen + timedelta(seconds=uniform(5, 60))
        device_id = factory._device_id(profile.id_style)
        key = device_id.lower()
        listed = ""
        if kind in (GRANDFATHERED, APPROVED):
            listed = DeviceIdList.ALLOWED
        elif kind == HELPDESK_BLOCKED:
            listed = DeviceIdList.BLOCKED
        if listed:
            entries.append((mailbox_pk, device_id, key, listed, changed))
        decision = decide(enabled, listed, key, profile, info, first_seen)
        if info:
            families.add((profile.device_type, profile.device_model))
            first = first_names[mailbox_pk]
            language, friendly = choice(LANGUAGES), profile.friendly_name.format(first=first)
        else:
            language = friendly = ""
        if info and profile.phone:
            imei = "35" + "".join(choices(string.digits, k=13))
            phone, operator = f"+1202555{randint(100, 9999):04d}", choice(OPERATORS)
        else:
            imei = phone = operator = ""
        yield (
            mailbox_pk, device_id, key, profile.device_type,
            profile.device_model if info else "", profile.device_os if info else "",
            language, profile.user_agent, imei, phone, friendly, operator, profile.eas_version,
            info, first_seen, last_seen, decision.state, decision.reason, decision.rule_id,
            decision.policy_id, changed,
        )  # fmt: skip


# The table names come from the models' _meta; the values are parameters.
_HISTORY_SQL = (
    "INSERT INTO {change} (device_id, device_repr, time, from_state, from_reason,"
    " to_state, to_reason, rule_id, event_id)"
    " SELECT d.id, d.device_id || ' (' || m.alias || ')', d.state_changed_at, %s, %s,"
    " d.access_state, d.access_state_reason, d.access_rule_id, %s"
    " FROM {device} d JOIN {mailbox} m ON m.id = d.mailbox_id WHERE d.id > %s"
)


def _bulk_history(event, *, after_pk: int) -> None:
    """One state change per bulk device (Unknown -> its state), tied to the demo event."""
    sql = _HISTORY_SQL.format(
        change=DeviceStateChange._meta.db_table,
        device=MobileDevice._meta.db_table,
        mailbox=Mailbox._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [AccessState.UNKNOWN, AccessReason.GLOBAL, event.pk, after_pk])


def _verify_sample(rng, *, after_pk: int, rules, org) -> None:
    """Decide a random sample of the bulk devices again, from what the database holds."""
    last = MobileDevice.objects.order_by("-pk").values_list("pk", flat=True).first()
    population = range(after_pk + 1, last + 1)
    sample = rng.sample(population, min(_VERIFY_SAMPLE, len(population)))
    now = timezone.now()
    devices = MobileDevice.objects.filter(pk__in=sample).select_related("mailbox__access_policy")
    for device in devices:
        decision = access.decide(
            mailbox_facts(device.mailbox), device_facts(device), rules, org, now
        )
        held = (device.access_state, device.access_state_reason, device.access_rule_id)
        if held != (decision.state, decision.reason, decision.rule_id):
            raise RuntimeError(f"demo device {device} holds {held}, the engine decides {decision}")


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
