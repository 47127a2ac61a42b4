"""The data model: mailboxes, their device partnerships, rules, org settings, audit.

Device IDs, aliases and rule query strings compare case-insensitively. Rather
than wrap every lookup in LOWER(), each such row keeps a lower-cased key column
(`device_key`, `query_key`) that the unique constraints and indexes use.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Concat, Lower
from django.urls import reverse
from django.utils import timezone

from .choices import (
    AccessLevel,
    AccessReason,
    AccessState,
    AdminMailMode,
    AuditSource,
    Characteristic,
    DeviceIdList,
    OwnerAnswer,
    SelfApproval,
)
from .model_names import device_marketing_name

__all__ = [
    "AccessLevel",
    "AdminMailMode",
    "AccessReason",
    "AccessState",
    "AuditSource",
    "Characteristic",
    "DeviceIdList",
    "OwnerAnswer",
    "SelfApproval",
]


class OrgSettings(models.Model):
    """The organisation's ActiveSync settings: one row, pk=1."""

    default_access_level = models.CharField(
        max_length=16, choices=AccessLevel.choices, default=AccessLevel.ALLOW
    )
    admin_mail_recipients = models.JSONField(default=list, blank=True)
    user_mail_insert = models.TextField(blank=True, default="")
    # The insert per language ({"de": "..."}); a mail in a language without one takes
    # the default language's, then user_mail_insert (user_mail_insert_for).
    user_mail_inserts = models.JSONField(default=dict, blank=True)
    # Mails and phone notices of mailboxes whose language is not known, and admin mails.
    default_language = models.CharField(max_length=8, default="en")
    # The zone the times in mails are given in (IANA name).
    time_zone = models.CharField(max_length=64, default="UTC")
    discovery_window_minutes = models.PositiveIntegerField(default=15)
    # Exchange's own health probes (EASProbeDeviceType, TestActiveSyncConnectivity)
    # pass the gate without a partnership when this is on.
    allow_health_probes = models.BooleanField(default=True)
    # Lifecycle, beyond what Exchange offers.
    purge_quarantined_after_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Remove devices left in quarantine longer; empty: never."
    )
    self_approval = models.CharField(
        max_length=8, choices=SelfApproval.choices, default=SelfApproval.NEVER
    )
    # Notifications, beyond what Exchange offers.
    send_user_mail = models.BooleanField(default=True)
    admin_mail_mode = models.CharField(
        max_length=8, choices=AdminMailMode.choices, default=AdminMailMode.EACH
    )
    admin_digest_minutes = models.PositiveIntegerField(default=15)
    new_device_alert = models.BooleanField(default=False)
    # A fresh random token on every rule change, so each gate process knows when
    # to recompile its rules (a counter could repeat after a restore or rollback).
    rules_version = models.CharField(max_length=32, default="", blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "organisation settings"
        verbose_name_plural = "organisation settings"

    def __str__(self):
        return "Organisation settings"

    @classmethod
    def load(cls) -> "OrgSettings":
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj

    def user_mail_insert_for(self, language: str) -> str:
        """The insert in that language, else the default language's, else the plain one."""
        inserts = self.user_mail_inserts or {}
        for code in (language, self.default_language):
            if inserts.get(code):
                return inserts[code]
        return self.user_mail_insert


class AccessPolicy(models.Model):
    """A default access level for part of the organisation, in place of the org default.

    Mailboxes belong to it by explicit membership (Mailbox.access_policy with
    access_policy_pinned) or by the domain of their primary SMTP address. Among
    several domain policies the lowest `priority` wins.
    """

    name = models.CharField(max_length=100, unique=True)
    default_access_level = models.CharField(max_length=16, choices=AccessLevel.choices)
    domains = models.JSONField(default=list, blank=True)  # lower-case, without "@"
    # Directory groups (DNs, lower-case): their members belong, as of the last sync or sign-in.
    directory_groups = models.JSONField(default=list, blank=True)
    priority = models.PositiveIntegerField(default=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["priority", "name"]
        verbose_name_plural = "access policies"

    def __str__(self):
        return f"{self.name}: {self.default_access_level}"


class OrgDeviceId(models.Model):
    """A DeviceId allowed for any mailbox (a pool of loan devices)."""

    device_id = models.CharField(max_length=64)
    device_key = models.CharField(max_length=64, unique=True, editable=False)
    note = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["device_key"]
        verbose_name = "organisation-wide DeviceId"

    def __str__(self):
        return self.device_id

    def save(self, *args, **kwargs):
        self.device_key = self.device_id.lower()
        super().save(*args, **kwargs)


class DirectoryGroup(models.Model):
    """A group of the directory, as of the last sync or sign-in of one of its members."""

    dn = models.CharField(max_length=512)
    dn_key = models.CharField(max_length=512, unique=True, editable=False)  # lower-cased
    name = models.CharField(max_length=256, blank=True, default="")

    class Meta:
        ordering = ["dn_key"]

    def __str__(self):
        return self.name or self.dn

    def save(self, *args, **kwargs):
        self.dn_key = self.dn.lower()
        super().save(*args, **kwargs)


class DirectorySync(models.Model):
    """When `eas sync-directory` (the CLI or the beat task) last succeeded: one row, pk=1.

    In the database, not in a process, so that /metrics in any gunicorn worker
    reads what a Celery worker or a cron job did (ecp_directory_sync_last_success_timestamp).
    """

    last_success_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"Directory sync (last success {self.last_success_at or 'never'})"


def without_domain(login: str) -> str:
    """DOMAIN\\alias -> alias (Windows' down-level logon name); anything else as it is,
    stripped. Every door that reads a login or a mailbox identity goes through this."""
    login = (login or "").strip()
    return login.rsplit("\\", 1)[1] if "\\" in login else login


class MailboxQuerySet(models.QuerySet):
    def by_identity(self, identity: str) -> "Mailbox | None":
        """The mailbox named by an alias, a primary SMTP address or DOMAIN\\alias."""
        identity = without_domain(identity)
        if not identity:
            return None
        field = "primary_smtp_address__iexact" if "@" in identity else "alias__iexact"
        return self.filter(**{field: identity}).first()


SEARCH_SEPARATOR = "\n"  # between the columns of a search text: no search can span two


def search_column(*fields: str) -> models.GeneratedField:
    """The columns a list searches, lower-cased into one, kept by the database itself.

    A substring search then is one LIKE on one column per row, instead of an
    UPPER() LIKE per column, whose Unicode case mapping costs PostgreSQL about
    a microsecond each (docs/PERFORMANCE.md, the quarantine list's search).
    """
    parts = []
    for name in fields:
        parts += [F(name), Value(SEARCH_SEPARATOR)]
    return models.GeneratedField(
        expression=Lower(Concat(*parts[:-1], output_field=models.TextField())),
        output_field=models.TextField(),
        db_persist=True,
        editable=False,
    )


class Mailbox(models.Model):
    alias = models.CharField(max_length=64)
    primary_smtp_address = models.EmailField(max_length=254)
    display_name = models.CharField(max_length=256, blank=True)
    search_text = search_column("alias", "display_name", "primary_smtp_address")
    activesync_enabled = models.BooleanField(default=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="mailbox",
    )
    # The policy that applies, kept resolved by devices.actions (membership or domain).
    access_policy = models.ForeignKey(
        AccessPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="mailboxes"
    )
    access_policy_pinned = models.BooleanField(default=False)  # explicit membership
    # The directory entry this mailbox follows (empty: made in ECP or by an import), kept
    # by `eas sync-directory` and by each directory sign-in (devices.actions.directory).
    # (db_default too: bulk loads by COPY name only the columns they fill.)
    directory_dn = models.CharField(
        max_length=512, blank=True, default="", db_default="", db_index=True
    )
    # Disabled or removed in the directory: its devices are Blocked / AccountDisabled.
    directory_disabled = models.BooleanField(default=False, db_default=False)
    directory_groups = models.ManyToManyField(DirectoryGroup, blank=True, related_name="members")
    # The language of its mails and phone notice, by source (devices.languages says which
    # wins): the admin's choice, the directory's preferredLanguage, the phone's
    # DeviceOSLanguage. "" everywhere: the organisation's default language.
    language = models.CharField(max_length=8, blank=True, default="", db_default="")
    directory_language = models.CharField(max_length=8, blank=True, default="", db_default="")
    device_language = models.CharField(max_length=8, blank=True, default="", db_default="")
    created_at = models.DateTimeField(default=timezone.now)

    objects = MailboxQuerySet.as_manager()

    class Meta:
        ordering = ["alias"]
        verbose_name_plural = "mailboxes"
        constraints = [
            models.UniqueConstraint(Lower("alias"), name="mailbox_alias_ci_unique"),
            models.UniqueConstraint(Lower("primary_smtp_address"), name="mailbox_smtp_ci_unique"),
        ]

    def __str__(self):
        return self.alias


class MailboxDeviceId(models.Model):
    """One entry of a mailbox's allowed or blocked DeviceId list.

    A DeviceId is on at most one of the two lists of a mailbox: adding it to one
    moves it off the other (as allow-device/block-device do).
    """

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="device_ids")
    device_id = models.CharField(max_length=64)
    device_key = models.CharField(max_length=64, editable=False)
    list = models.CharField(max_length=8, choices=DeviceIdList.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["device_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "device_key"], name="mailbox_device_id_ci_unique"
            ),
        ]
        indexes = [models.Index(fields=["device_key"])]

    def __str__(self):
        return f"{self.mailbox}: {self.device_id} ({self.list})"

    def save(self, *args, **kwargs):
        self.device_key = self.device_id.lower()
        super().save(*args, **kwargs)


class DeviceAccessRule(models.Model):
    characteristic = models.CharField(max_length=16, choices=Characteristic.choices)
    query_string = models.CharField(max_length=256)
    query_key = models.CharField(max_length=256, editable=False)
    access_level = models.CharField(max_length=16, choices=AccessLevel.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["characteristic", "query_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["characteristic", "query_key"], name="rule_characteristic_query_unique"
            ),
        ]

    def __str__(self):
        return f"{self.query_string} ({self.characteristic}): {self.access_level}"

    def save(self, *args, **kwargs):
        self.query_key = self.query_string.lower()
        super().save(*args, **kwargs)


class MobileDevice(models.Model):
    """A partnership: one device syncing one mailbox."""

    # No index of its own: the unique (mailbox, device_key) index starts with it. Every
    # index is written again for each device a rule change moves (docs/PERFORMANCE.md).
    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.CASCADE, related_name="devices", db_index=False
    )
    device_id = models.CharField(max_length=64)
    device_key = models.CharField(max_length=64, editable=False)
    device_type = models.CharField(max_length=64, blank=True, default="")
    device_model = models.CharField(max_length=256, blank=True, default="")
    device_os = models.CharField(max_length=256, blank=True, default="")
    device_os_language = models.CharField(max_length=64, blank=True, default="")
    user_agent = models.CharField(max_length=256, blank=True, default="")
    imei = models.CharField(max_length=64, blank=True, default="")
    phone_number = models.CharField(max_length=64, blank=True, default="")
    friendly_name = models.CharField(max_length=256, blank=True, default="")
    search_text = search_column(
        "device_id", "device_type", "device_model", "device_os", "user_agent", "friendly_name"
    )
    mobile_operator = models.CharField(max_length=128, blank=True, default="")
    eas_version = models.CharField(max_length=16, blank=True, default="")
    device_info_received = models.BooleanField(default=False)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    access_state = models.CharField(
        max_length=16, choices=AccessState.choices, default=AccessState.UNKNOWN
    )
    access_state_reason = models.CharField(
        max_length=16, choices=AccessReason.choices, default=AccessReason.GLOBAL
    )
    access_rule = models.ForeignKey(
        DeviceAccessRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The access policy whose level decided the device (reason Global), if any.
    access_policy = models.ForeignKey(
        AccessPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state_changed_at = models.DateTimeField(default=timezone.now)
    # Flapping (issue 16): how often the device changed its own decision-relevant
    # details in the current interval (ECP_NOTIFY_MIN_INTERVAL_MINUTES) and since when;
    # when it last went over ECP_DEVICE_DETAIL_CHANGES_LIMIT; and when a decision it
    # held back (one that would loosen access) is due. devices.actions.record_contact.
    # db_default: bulk loads (COPY, devices.bulk) name only the columns they fill.
    detail_changes = models.PositiveIntegerField(default=0, db_default=0)
    detail_changes_since = models.DateTimeField(null=True, blank=True)
    flapped_at = models.DateTimeField(null=True, blank=True)
    redecide_due_at = models.DateTimeField(null=True, blank=True)
    # "Was this you?" (issue 18): the owner's answer through the signed link in the user
    # mail or the phone notice, from which address and when.
    owner_answer = models.CharField(
        max_length=8, choices=OwnerAnswer.choices, blank=True, default="", db_default=""
    )
    owner_answered_at = models.DateTimeField(null=True, blank=True)
    owner_answer_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["mailbox__alias", "device_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "device_key"], name="device_mailbox_device_key_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["device_key"]),
            models.Index(fields=["device_type", "device_model"]),
            # The all-devices list's default order, newest first (a backward scan), and
            # the dashboard's new devices per day. (Per state, the list and the
            # discovery window's end use (access_state, state_changed_at, id):
            # migration 0008.)
            models.Index(fields=["first_seen", "id"], name="device_first_seen_idx"),
            # The quarantine list: its default order, and every column its filters and
            # search read, for the quarantined devices only. Counts, filters and pages
            # read this small index, never the table's rows scattered over a million
            # (PostgreSQL; elsewhere a plain partial index). docs/PERFORMANCE.md.
            models.Index(
                fields=["state_changed_at", "id"],
                include=[
                    *("mailbox", "device_key", "device_type", "device_model", "first_seen"),
                    "search_text",
                ],
                condition=models.Q(access_state="Quarantined"),
                name="device_quarantine_list_idx",
            ),
        ]

    def __str__(self):
        return f"{self.device_id} ({self.mailbox})"

    def save(self, *args, **kwargs):
        self.device_key = self.device_id.lower()
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("device-detail", args=[self.pk])

    @property
    def marketing_name(self) -> str:
        """'iPhone 14 Pro' for DeviceModel iPhone15C2 (devices.model_names), or ""."""
        return device_marketing_name(self)


class ActionLinkUse(models.Model):
    """A signed mail link that was used: what makes the links single-use.

    One row per device, action and the state the link was issued for, so the
    same link in the mail, the digest, a chat post or the phone notice counts
    as one: once it is used, every copy says "used" (devices.links).
    """

    device = models.ForeignKey(MobileDevice, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=16)
    issued_for = models.CharField(max_length=64)  # the device's state stamp
    used_at = models.DateTimeField(default=timezone.now)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    used_by_name = models.CharField(max_length=150, blank=True, default="")
    client_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "action", "issued_for"], name="action_link_use_unique"
            ),
        ]

    def __str__(self):
        return f"{self.action} link of device {self.device_id} used {self.used_at:%Y-%m-%d %H:%M}"


class DeviceClass(models.Model):
    """Each (DeviceType, DeviceModel) pair ever seen: the device families."""

    device_type = models.CharField(max_length=64)
    device_model = models.CharField(max_length=256, blank=True, default="")
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["device_type", "device_model"]
        verbose_name_plural = "device classes"
        constraints = [
            models.UniqueConstraint(
                fields=["device_type", "device_model"], name="device_class_unique"
            ),
        ]

    def __str__(self):
        return (
            f"{self.device_type} / {self.device_model}" if self.device_model else self.device_type
        )


class AuditImmutable(Exception):
    """Audit events are append-only: no update, no delete."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditImmutable("audit events cannot be changed")

    def delete(self):
        raise AuditImmutable("audit events cannot be deleted")

    def bulk_update(self, *args, **kwargs):
        raise AuditImmutable("audit events cannot be changed")


class AuditEvent(models.Model):
    """One change, by whom, through which door. Written by devices.actions only.

    Append-only: the queryset refuses update() and delete(), the instance
    refuses a second save() and delete(). Deleting the actor's account keeps
    the event, with the copied actor_name.
    """

    time = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150)
    source = models.CharField(max_length=16, choices=AuditSource.choices)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64, blank=True, default="")
    object_repr = models.CharField(max_length=256, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True, default="")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["time", "id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self):
        return f"{self.time:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditImmutable("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditImmutable("audit events cannot be deleted")


class DeviceStateChange(models.Model):
    """The access-state history of a device; ties each change to its audit event."""

    device = models.ForeignKey(
        MobileDevice, null=True, on_delete=models.SET_NULL, related_name="state_changes"
    )
    device_repr = models.CharField(max_length=200)
    time = models.DateTimeField(default=timezone.now)
    from_state = models.CharField(max_length=16, choices=AccessState.choices)
    from_reason = models.CharField(max_length=16, choices=AccessReason.choices)
    to_state = models.CharField(max_length=16, choices=AccessState.choices)
    to_reason = models.CharField(max_length=16, choices=AccessReason.choices)
    rule = models.ForeignKey(
        DeviceAccessRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    event = models.ForeignKey(
        AuditEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="state_changes"
    )

    class Meta:
        ordering = ["time", "id"]
        indexes = [models.Index(fields=["device", "time"])]

    def __str__(self):
        return f"{self.device_repr}: {self.from_state} -> {self.to_state}"


class RuleChangeJob(models.Model):
    """A rule change too big to make inside a request, run by a Celery worker.

    The job keeps what the action needs (the rule's values or id) and who asked,
    so that the worker acts, and audits, as that person from that request.
    """

    class Kind(models.TextChoices):
        CREATE = "create", "Creating"
        UPDATE = "update", "Changing"
        DELETE = "delete", "Deleting"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    # create/update: characteristic, query_string, access_level; update/delete: rule_id
    # and rule (the rule's words when the job was made).
    params = models.JSONField(default=dict)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    user_name = models.CharField(max_length=150)
    source = models.CharField(max_length=16, choices=AuditSource.choices)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    devices_total = models.PositiveIntegerField(default=0)
    # 0-100 while running, written by the worker outside the change's transaction
    # (devices.progress); the job page shows it as a bar.
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_kind_display()} rule ({self.get_status_display()})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    def elapsed_seconds(self, now=None) -> int:
        start = self.started_at or self.created_at
        end = self.finished_at or now or timezone.now()
        return max(0, int((end - start).total_seconds()))


class UserPreferences(models.Model):
    """A panel user's own language and time zone ("": the browser's)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    language = models.CharField(max_length=8, blank=True, default="")
    time_zone = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name_plural = "user preferences"

    def __str__(self):
        return f"Preferences of {self.user}"


class ImportJob(models.Model):
    """A CSV import from the import page: checked first (a dry run), then run by a worker.

    The rows are kept from the check to the run, so that what runs is what was
    checked; the run checks every row again and imports all of them or none.
    """

    class Kind(models.TextChoices):
        MAILBOXES = "mailboxes", "Mailboxes (Get-CASMailbox)"
        DEVICES = "devices", "Devices (Get-MobileDevice)"

    class Status(models.TextChoices):
        CHECKED = "checked", "Checked, not started"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    file_name = models.CharField(max_length=255, blank=True)
    # [[line, {column: value}], ...] as read from the file (devices.csv_import); emptied
    # once the import has run (the mailboxes and devices hold the data then).
    rows = models.JSONField(default=list)
    lines = models.PositiveIntegerField(default=0)
    approve = models.BooleanField(default=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    user_name = models.CharField(max_length=150)
    source = models.CharField(max_length=16, choices=AuditSource.choices)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.CHECKED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Import of {self.get_kind_display()} ({self.get_status_display()})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    def elapsed_seconds(self, now=None) -> int:
        start = self.started_at or self.created_at
        end = self.finished_at or now or timezone.now()
        return max(0, int((end - start).total_seconds()))
