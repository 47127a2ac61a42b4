"""Demo-like data for the browser tests and the screenshots, built through devices.actions.

The story: the organisation ran on Allow while devices came in, the admin
added two rules (Outlook allowed, old Samsung SGH-* blocked), grandfathered the
devices already syncing and switched the default to Quarantine. Since then new
devices wait in quarantine; the help desk approved some and blocked one; a
leaver's mailbox has ActiveSync turned off. Deterministic: a fixed seed.
"""

import random
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from devices import actions
from devices.audit import Actor
from devices.models import AccessState, AuditSource, DeviceStateChange, MobileDevice
from devices.permissions import HELP_DESK_GROUP, ORG_MANAGEMENT_GROUP

PASSWORD = "demo passphrase 2010"
GATE = Actor(source=AuditSource.GATE)
ADMIN = Actor(source=AuditSource.CLI)

PEOPLE = (
    ("anna.berg", "Anna Berg"),
    ("ben.okafor", "Ben Okafor"),
    ("carla.mendes", "Carla Mendes"),
    ("david.kim", "David Kim"),
    ("emma.lindqvist", "Emma Lindqvist"),
    ("farid.haddad", "Farid Haddad"),
    ("grace.liu", "Grace Liu"),
    ("hannes.vogel", "Hannes Vogel"),  # the leaver
)


@dataclass(frozen=True)
class Kind:
    device_type: str
    model: str
    os: str
    user_agent: str
    name: str  # friendly name, "{first}'s ..."
    prefix: str


IPHONE = Kind(
    "iPhone", "iPhone15C2", "iOS 17.5.1 21F90", "Apple-iPhone15C2/2106.90", "iPhone", "Appl"
)
IPAD = Kind("iPad", "iPad13C1", "iOS 17.4 21E219", "Apple-iPad13C1/2104.143", "iPad", "Appl")
PIXEL = Kind(
    "Android",
    "Pixel 7",
    "Android 14",
    "Android-Mail/2024.02.04.603131486.Release",
    "Pixel 7",
    "androidc",
)
GALAXY = Kind(
    "SAMSUNGSMG991B",
    "SM-G991B",
    "Android 14",
    "Android-SAMSUNG-SM-G991B/101.1400.1",
    "Galaxy S21",
    "SEC",
)
OLD_SAMSUNG = Kind(
    "SAMSUNGSGHI897",
    "SGH-I897",
    "Android 2.3.6",
    "Android-SAMSUNG-SGH-I897/100.202",
    "Captivate",
    "SEC",
)
OUTLOOK = Kind(
    "Outlook", "Outlook for iOS and Android", "", "Outlook-iOS-Android/1.0", "Outlook", ""
)
WINDOWS = Kind("WindowsMail", "WindowsMail", "Windows 10", "MSFT-WIN-3/10.0.19045", "Laptop", "")


def _device_id(rng, kind: Kind) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    if kind.prefix == "androidc":
        return "androidc" + "".join(rng.choice("0123456789") for _ in range(10))
    if kind.device_type in ("Outlook", "WindowsMail"):
        return "".join(rng.choice("0123456789ABCDEF") for _ in range(32))
    return kind.prefix + "".join(rng.choice(alphabet) for _ in range(12 - len(kind.prefix)))


def _phone_details(rng, kind: Kind) -> dict:
    if kind.device_type in ("Outlook", "WindowsMail", "iPad"):
        return {}
    return {
        "imei": "35" + "".join(rng.choice("0123456789") for _ in range(13)),
        "phone_number": "+1202555" + "".join(rng.choice("0123456789") for _ in range(4)),
        "mobile_operator": rng.choice(("T-Mobile", "Verizon", "AT&T")),
    }


def _add(rng, mailbox, kind: Kind, days_ago: float):
    first = mailbox.display_name.split()[0]
    device = actions.record_contact(
        GATE,
        mailbox,
        actions.Contact(
            device_id=_device_id(rng, kind),
            device_type=kind.device_type,
            user_agent=kind.user_agent,
            eas_version="16.1",
            info={
                **_phone_details(rng, kind),
                "model": kind.model,
                "os": kind.os,
                "friendly_name": f"{first}'s {kind.name}",
                "os_language": "en-US",
            },
        ),
    )
    when = timezone.now() - timedelta(days=days_ago)
    MobileDevice.objects.filter(pk=device.pk).update(
        first_seen=when, last_seen=when + timedelta(minutes=5), state_changed_at=when
    )
    DeviceStateChange.objects.filter(device=device).update(time=when)
    return device


def seed():
    rng = random.Random(2010)
    User = get_user_model()
    demo = SimpleNamespace(password=PASSWORD)
    demo.admin = User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    demo.helpdesk = User.objects.create_user("helpdesk", "helpdesk@example.com", PASSWORD)
    demo.helpdesk.groups.add(Group.objects.get_or_create(name=HELP_DESK_GROUP)[0])
    Group.objects.get_or_create(name=ORG_MANAGEMENT_GROUP)

    boxes = {}
    for alias, name in PEOPLE:
        password = PASSWORD if alias == "anna.berg" else None
        boxes[alias] = actions.create_mailbox(
            ADMIN, alias=alias, email=f"{alias}@example.com", display_name=name, password=password
        ).obj
    demo.anna = User.objects.get(username="anna.berg")
    demo.boxes = boxes
    people = [boxes[alias] for alias, _ in PEOPLE]

    # Before quarantine: everything allowed.
    for i, box in enumerate(people):
        _add(rng, box, (IPHONE, PIXEL, GALAXY, WINDOWS)[i % 4], 30 - i * 0.8)
    _add(rng, boxes["farid.haddad"], OLD_SAMSUNG, 24)
    actions.create_rule(
        ADMIN, characteristic="DeviceType", query_string="Outlook", access_level="Allow"
    )
    actions.create_rule(
        ADMIN, characteristic="DeviceModel", query_string="SGH-*", access_level="Block"
    )
    actions.grandfather_devices(ADMIN)
    actions.set_org_settings(
        ADMIN,
        default_access_level="Quarantine",
        admin_mail_recipients=["helpdesk@example.com"],
        user_mail_insert=(
            "New phones and tablets wait for approval by the IT help desk, usually within "
            "one working hour. Questions? Call extension 4357."
        ),
    )

    # Since then: new devices wait in quarantine.
    plan = [
        ("anna.berg", IPAD, 12.3),
        ("ben.okafor", PIXEL, 11.2),
        ("carla.mendes", IPHONE, 9.6),
        ("david.kim", GALAXY, 8.1),
        ("emma.lindqvist", PIXEL, 7.4),
        ("grace.liu", IPHONE, 6.2),
        ("anna.berg", PIXEL, 5.5),
        ("ben.okafor", IPAD, 4.8),
        ("carla.mendes", OUTLOOK, 4.1),
        ("david.kim", IPHONE, 3.3),
        ("emma.lindqvist", GALAXY, 2.4),
        ("farid.haddad", PIXEL, 1.7),
        ("grace.liu", IPAD, 1.1),
        ("farid.haddad", IPHONE, 0.4),
        ("ben.okafor", GALAXY, 0.2),
    ]
    added = [_add(rng, boxes[alias], kind, days) for alias, kind, days in plan]
    # The help desk approved two and blocked one.
    helpdesk = Actor(user=demo.helpdesk, source=AuditSource.UI, ip="10.0.0.7")
    for device in (added[2], added[5]):
        actions.allow_device(helpdesk, device.mailbox, device.device_id)
    actions.block_device(helpdesk, added[3].mailbox, added[3].device_id)
    demo.approved = added[5]
    # The leaver.
    actions.set_mailbox(ADMIN, boxes["hannes.vogel"], activesync_enabled=False)
    demo.quarantined = list(
        MobileDevice.objects.filter(access_state=AccessState.QUARANTINED).select_related("mailbox")
    )
    return demo
