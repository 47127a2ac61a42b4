"""Mailboxes that follow the directory: at each sign-in, and by `eas sync-directory`.

A directory user who signs in (to the panel, or through a device in the
gate's ldap or upstream mode) gets a mailbox if none matches yet; a sync
creates, updates and disables mailboxes for every user at once. Either way
the mailbox keeps the entry's address, display name, groups (for
group-scoped access policies) and disabled flag (its devices are then
Blocked / AccountDisabled), and every change is audited as "directory".
"""

import re
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..audit import Actor, record
from ..directory.entries import Entry
from ..models import (
    AuditSource,
    DirectoryGroup,
    DirectorySync,
    Mailbox,
    MobileDevice,
    without_domain,
)
from ..permissions import HELP_DESK_GROUP, ORG_MANAGEMENT_GROUP
from .base import CHUNK, ActionError, AuditAfter, Result, lock
from .policies import resolve_policies
from .reevaluation import reevaluate

DIRECTORY = Actor(source=AuditSource.DIRECTORY)
_ALIAS_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
DETAIL_LIMIT = 50  # aliases named per kind in a sync's audit event


def _snapshot(mailbox: Mailbox, groups) -> dict:
    return {
        "alias": mailbox.alias,
        "primary_smtp_address": mailbox.primary_smtp_address,
        "display_name": mailbox.display_name,
        "directory_dn": mailbox.directory_dn,
        "directory_disabled": mailbox.directory_disabled,
        "directory_language": mailbox.directory_language,
        "directory_groups": sorted(groups),
    }


def _groups(dns) -> list[DirectoryGroup]:
    """The DirectoryGroup rows for these DNs, created where missing."""
    keys = {dn.lower(): dn for dn in dns}
    found = {g.dn_key: g for g in DirectoryGroup.objects.filter(dn_key__in=list(keys))}
    missing = [
        DirectoryGroup(dn=dn, dn_key=key, name=_group_name(dn))
        for key, dn in keys.items()
        if key not in found
    ]
    if missing:
        DirectoryGroup.objects.bulk_create(missing, ignore_conflicts=True)
        found = {g.dn_key: g for g in DirectoryGroup.objects.filter(dn_key__in=list(keys))}
    return list(found.values())


def _group_name(dn: str) -> str:
    first = dn.split(",", 1)[0]
    return first.split("=", 1)[1].strip() if "=" in first else dn


def _find(user, entry: Entry) -> Mailbox | None:
    """The mailbox this user's entry is: its own, then by DN, alias, address."""
    rows = lock(Mailbox.objects.all())
    found = rows.filter(user=user).first() if user is not None else None
    for condition in (
        Q(directory_dn__iexact=entry.dn),
        Q(alias__iexact=entry.username),
        Q(primary_smtp_address__iexact=entry.mail),
    ):
        if found is not None:
            break
        found = rows.filter(condition).first()
    if found is not None and user is not None and found.user_id not in (None, user.pk):
        return None  # another login's mailbox: never taken over
    return found


def _roles(user, groups: frozenset[str]) -> list[str]:
    """Organization Management / Help Desk from the directory groups; what changed."""
    changed = []
    for dn, name in (
        (settings.ECP_LDAP_ADMIN_GROUP, ORG_MANAGEMENT_GROUP),
        (settings.ECP_LDAP_HELPDESK_GROUP, HELP_DESK_GROUP),
    ):
        if not dn:
            continue
        role, _ = Group.objects.get_or_create(name=name)
        member = user.groups.filter(pk=role.pk).exists()
        if (dn in groups) != member:
            (user.groups.add if dn in groups else user.groups.remove)(role)
            changed.append(("+" if dn in groups else "-") + name)
    return changed


@transaction.atomic
def signed_in(user, entry: Entry, *, groups_known: bool = True) -> Mailbox | None:
    """Keep the mailbox and roles of a directory user in step with its entry.

    Called by the directory backend after every successful bind, and by the
    gate's upstream mode (with a made-up entry that carries no groups).
    """
    mailbox = _find(user, entry)
    if mailbox is None:
        mailbox = _create_for(user, entry)
        if mailbox is None:
            return None
        if groups_known:
            mailbox.directory_groups.set(_groups(entry.groups))
        _settle(DIRECTORY, Mailbox.objects.filter(pk=mailbox.pk), "created", mailbox, None)
    else:
        before_groups = set(mailbox.directory_groups.values_list("dn_key", flat=True))
        before = _snapshot(mailbox, before_groups)
        if mailbox.user_id is None and user is not None:
            mailbox.user = user
        _follow(mailbox, entry)
        mailbox.save()
        groups = before_groups
        if groups_known and set(entry.groups) != before_groups:
            mailbox.directory_groups.set(_groups(entry.groups))
            groups = set(entry.groups)
        if _snapshot(mailbox, groups) != before:
            _settle(DIRECTORY, Mailbox.objects.filter(pk=mailbox.pk), "updated", mailbox, before)
    if groups_known and user is not None:
        changed = _roles(user, entry.groups)
        if changed:
            record(
                DIRECTORY,
                action="user.roles",
                object_type="User",
                object_id=str(user.pk),
                object_repr=user.get_username(),
                after={"roles": changed},
                message=f"Roles of {user.get_username()} from the directory: {', '.join(changed)}",
            )
    return mailbox


def _follow(mailbox: Mailbox, entry: Entry) -> None:
    mailbox.directory_dn = entry.dn
    mailbox.directory_disabled = entry.disabled
    mailbox.display_name = entry.display_name
    mailbox.directory_language = entry.language
    taken = (
        Mailbox.objects.filter(primary_smtp_address__iexact=entry.mail)
        .exclude(pk=mailbox.pk)
        .exists()
    )
    if not taken:
        mailbox.primary_smtp_address = entry.mail


def _free_alias(name: str) -> str:
    alias, n = name, 1
    while Mailbox.objects.filter(alias__iexact=alias).exists():
        n += 1
        alias = f"{name[:60]}-{n}"
    return alias


def _create_for(user, entry: Entry) -> Mailbox | None:
    if not _ALIAS_RE.fullmatch(entry.username):
        return None
    if Mailbox.objects.filter(primary_smtp_address__iexact=entry.mail).exists():
        return None  # that address is another mailbox's
    try:
        with transaction.atomic():
            return Mailbox.objects.create(
                alias=_free_alias(entry.username),
                primary_smtp_address=entry.mail,
                display_name=entry.display_name,
                user=user,
                directory_dn=entry.dn,
                directory_disabled=entry.disabled,
                directory_language=entry.language,
            )
    except IntegrityError:  # made by a concurrent sign-in of the same user
        return Mailbox.objects.filter(alias__iexact=entry.username).first()


def _settle(
    actor: Actor, scope, how: str, mailbox: Mailbox, before, origin: str = "the directory"
) -> Result:
    """Resolve the policies of the changed mailboxes, re-decide their devices, audit."""
    resolve_policies(scope)
    mailbox.refresh_from_db()
    groups = mailbox.directory_groups.values_list("dn_key", flat=True)
    audit = AuditAfter(
        actor,
        f"Mailbox {mailbox.alias} {how} from {origin}",
        action="mailbox.create" if how == "created" else "mailbox.update",
        obj=mailbox,
        before=before,
        after=_snapshot(mailbox, groups),
    )
    transitions = reevaluate(MobileDevice.objects.filter(mailbox__in=scope), audit)
    return Result(mailbox, audit(), transitions)


# --- eas sync-directory ---------------------------------------------------------------


@dataclass
class SyncCounts:
    created: int = 0
    updated: int = 0
    disabled: int = 0
    unchanged: int = 0
    skipped: int = 0  # entries that name no usable alias or whose address is taken
    dry_run: bool = False
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        found = asdict(self)
        found.pop("details")
        return found


_SYNC_FIELDS = (
    "primary_smtp_address",
    "display_name",
    "directory_dn",
    "directory_disabled",
    "directory_language",
)


def sync_directory(
    actor: Actor,
    entries: list[Entry],
    *,
    dry_run: bool = False,
    force: bool = False,
    max_disable_percent: int | None = None,
) -> SyncCounts:
    """Create, update and disable mailboxes so that they follow `entries` (all users).

    Refuses (ActionError, nothing changed) when it would disable more than
    ECP_DIRECTORY_MAX_DISABLE_PERCENT of the mailboxes that follow the directory,
    unless `force`: a directory that answers with too few users must not lock
    everybody out.
    """
    if max_disable_percent is None:
        max_disable_percent = getattr(settings, "ECP_DIRECTORY_MAX_DISABLE_PERCENT", 10)
    with transaction.atomic():
        plan = _plan(entries)
        linked = plan["linked_enabled"]
        disabling = len(plan["disable"]) + sum(
            1 for pk, _, changes in plan["update"] if changes.get("directory_disabled") is True
        )
        counts = SyncCounts(
            created=len(plan["create"]),
            updated=len(plan["update"]),
            disabled=disabling,
            unchanged=plan["unchanged"],
            skipped=plan["skipped"],
            dry_run=dry_run,
        )
        if linked and disabling * 100 > max_disable_percent * linked and not force:
            raise ActionError(
                f"The directory sync would disable {disabling} of {linked} mailboxes that"
                f" follow the directory (more than {max_disable_percent} %): nothing was"
                " changed. Check the directory and the search settings, or give --force."
            )
        if not dry_run:
            _apply(actor, plan, counts)
            # For monitoring (ecp_directory_sync_last_success_timestamp): in the database,
            # so that every process reads what the beat task or the CLI did.
            DirectorySync.objects.update_or_create(
                pk=1, defaults={"last_success_at": timezone.now()}
            )
    return counts


def _plan(entries: list[Entry]) -> dict:
    mailboxes = {
        row["pk"]: row
        for row in Mailbox.objects.values("pk", "alias", *_SYNC_FIELDS).order_by("pk")
    }
    by_dn, by_alias, by_mail = {}, {}, {}
    for pk, row in mailboxes.items():
        if row["directory_dn"]:
            by_dn[row["directory_dn"].lower()] = pk
        by_alias[row["alias"].lower()] = pk
        by_mail[row["primary_smtp_address"].lower()] = pk
    memberships: dict[int, set] = {}
    through = Mailbox.directory_groups.through
    for pk, key in through.objects.values_list("mailbox_id", "directorygroup__dn_key"):
        memberships.setdefault(pk, set()).add(key)

    create, update, seen, matched = [], [], set(), set()
    unchanged = skipped = 0
    mails_taken = set(by_mail)
    for entry in entries:
        if entry.username in seen or not _ALIAS_RE.fullmatch(entry.username):
            skipped += 1
            continue
        seen.add(entry.username)
        pk = by_dn.get(entry.dn.lower()) or by_alias.get(entry.username)
        pk = pk or by_mail.get(entry.mail)
        if pk is None or pk in matched:
            if entry.mail in mails_taken:
                skipped += 1
                continue
            mails_taken.add(entry.mail)
            create.append(entry)
            continue
        matched.add(pk)
        row = mailboxes[pk]
        wanted = {
            "directory_dn": entry.dn,
            "directory_disabled": entry.disabled,
            "display_name": entry.display_name,
            "directory_language": entry.language,
        }
        if entry.mail != row["primary_smtp_address"].lower() and entry.mail not in mails_taken:
            wanted["primary_smtp_address"] = entry.mail
            mails_taken.add(entry.mail)
        changes = {k: v for k, v in wanted.items() if row[k] != v}
        groups = set(entry.groups)
        if groups != memberships.get(pk, set()):
            changes["groups"] = groups
        if changes:
            update.append((pk, entry, changes))
        else:
            unchanged += 1
    disable = [
        pk
        for dn, pk in by_dn.items()
        if pk not in matched and not mailboxes[pk]["directory_disabled"]
    ]
    linked_enabled = sum(
        1 for row in mailboxes.values() if row["directory_dn"] and not row["directory_disabled"]
    )
    return {
        "create": create,
        "update": update,
        "disable": disable,
        "unchanged": unchanged
        + sum(1 for pk in by_dn.values() if pk not in matched and pk not in disable),
        "skipped": skipped,
        "linked_enabled": linked_enabled,
    }


def _apply(actor: Actor, plan: dict, counts: SyncCounts) -> None:
    all_groups = {g for e in plan["create"] for g in e.groups}
    all_groups |= {g for _, _, c in plan["update"] for g in c.get("groups", ())}
    group_ids = {g.dn_key: g.pk for g in _groups(all_groups)} if all_groups else {}
    through = Mailbox.directory_groups.through

    created = Mailbox.objects.bulk_create(
        [
            Mailbox(
                alias=e.username,
                primary_smtp_address=e.mail,
                display_name=e.display_name,
                directory_dn=e.dn,
                directory_disabled=e.disabled,
                directory_language=e.language,
            )
            for e in plan["create"]
        ],
        batch_size=CHUNK,
    )
    if any(m.pk is None for m in created):  # a database that returns no ids
        aliases = [m.alias for m in created]
        created = list(Mailbox.objects.filter(alias__in=aliases))
    by_alias = {m.alias.lower(): m.pk for m in created}
    links = [
        through(mailbox_id=by_alias[e.username], directorygroup_id=group_ids[g])
        for e in plan["create"]
        for g in e.groups
    ]

    changed, decisive = [], []  # updated; updated in what a decision reads
    for pk, _, changes in plan["update"]:
        fields = {k: v for k, v in changes.items() if k != "groups"}
        if fields:
            Mailbox.objects.filter(pk=pk).update(**fields)
        if "groups" in changes:
            through.objects.filter(mailbox_id=pk).delete()
            links += [
                through(mailbox_id=pk, directorygroup_id=group_ids[g]) for g in changes["groups"]
            ]
        changed.append(pk)
        if changes.keys() & {"groups", "directory_disabled", "primary_smtp_address"}:
            decisive.append(pk)
    through.objects.bulk_create(links, batch_size=CHUNK)
    if plan["disable"]:
        for i in range(0, len(plan["disable"]), CHUNK):
            Mailbox.objects.filter(pk__in=plan["disable"][i : i + CHUNK]).update(
                directory_disabled=True
            )

    touched = [*by_alias.values(), *decisive, *plan["disable"]]
    names = {
        "created": [e.username for e in plan["create"][:DETAIL_LIMIT]],
        "updated": [e.username for _, e, _ in plan["update"][:DETAIL_LIMIT]],
        "disabled": list(
            Mailbox.objects.filter(pk__in=plan["disable"][:DETAIL_LIMIT]).values_list(
                "alias", flat=True
            )
        ),
    }
    counts.details = names
    audit = AuditAfter(
        actor,
        f"Directory sync: {counts.created} created, {counts.updated} updated,"
        f" {counts.disabled} disabled, {counts.unchanged} unchanged",
        action="directory.sync",
        object_type="Directory",
        object_repr="directory",
        after={**counts.as_dict(), "aliases": names},
    )
    if not touched:
        audit()
        return
    for i in range(0, len(touched), CHUNK):
        resolve_policies(Mailbox.objects.filter(pk__in=touched[i : i + CHUNK]))
    # Only the mailboxes that existed can have devices.
    existing = [*decisive, *plan["disable"]]
    for i in range(0, len(existing), CHUNK):
        reevaluate(MobileDevice.objects.filter(mailbox_id__in=existing[i : i + CHUNK]), audit)
    audit()


# --- the gate's upstream mode -----------------------------------------------------------


def _alias_from(name: str) -> str:
    alias = re.sub(r"[^A-Za-z0-9._-]", "-", name)[:64].strip("-.") or "user"
    return alias.lower()


@transaction.atomic
def upstream_signed_in(login: str):
    """The ECP login of a user the upstream EAS server just accepted, made if missing.

    The address is the login if it holds "@", else login@ECP_DEFAULT_MAIL_DOMAIN;
    a mailbox with that address (or that alias) is the user's, else one is made,
    and the org default then decides its devices as for any new partnership.
    """
    from django.contrib.auth import get_user_model

    name = without_domain(login).lower()
    if "@" in name:
        address, alias = name, name.split("@", 1)[0]
    else:
        address, alias = f"{name}@{settings.ECP_DEFAULT_MAIL_DOMAIN or 'localdomain'}", name
    rows = lock(Mailbox.objects.all())
    mailbox = rows.filter(primary_smtp_address__iexact=address).first()
    if mailbox is None and "@" not in name:
        mailbox = rows.filter(alias__iexact=alias).first()
    if mailbox is not None and mailbox.user_id:
        return mailbox.user
    User = get_user_model()
    username = mailbox.alias if mailbox is not None else _alias_from(alias)
    user = User.objects.filter(username__iexact=username).first()
    if user is not None and Mailbox.objects.filter(user=user).exists():
        # jdoe@a.example while jdoe@b.example has the login "jdoe": name it by address.
        username = address
        user = User.objects.filter(username__iexact=username).first()
    if user is None:
        user = User(username=username, email=address)
        user.set_unusable_password()  # the upstream server keeps the password
        user.save()
    if mailbox is None:
        mailbox = Mailbox.objects.create(
            alias=_free_alias(_alias_from(alias)),
            primary_smtp_address=address,
            display_name=name,
            user=user,
        )
        scope = Mailbox.objects.filter(pk=mailbox.pk)
        _settle(DIRECTORY, scope, "created", mailbox, None, origin="a mail server sign-in")
    else:
        mailbox.user = user
        mailbox.save(update_fields=["user"])
        record(
            DIRECTORY,
            action="mailbox.update",
            obj=mailbox,
            before={"login": ""},
            after={"login": user.get_username()},
            message=f"Mailbox {mailbox.alias} linked to login {user.get_username()}"
            " (verified by the mail server)",
        )
    return user
