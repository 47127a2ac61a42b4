"""What the API reads and writes. Keys are snake_case, as in the CLI's JSON.

Writes are validated here for shape (types, lengths, choices); the domain
rules stay in devices.actions, whose ActionError becomes a 400 (409 for
ConflictError) with its message.
"""

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from devices.actions import MAX_DEVICE_ID
from devices.models import (
    AccessLevel,
    AccessPolicy,
    AccessReason,
    AccessState,
    AdminMailMode,
    AuditEvent,
    AuditSource,
    Characteristic,
    DeviceAccessRule,
    DeviceIdList,
    Mailbox,
    MobileDevice,
    OrgDeviceId,
    OrgSettings,
    RuleChangeJob,
    SelfApproval,
)
from devices.permissions import Role
from devices.views.jobs import describe as describe_job  # the job page's wording
from notifications.models import Notification

MAX_LIST_ITEMS = 1000
MAX_ID = 2**31 - 1  # ids beyond a database integer name nothing


class LenientChoiceField(serializers.ChoiceField):
    """A choice given in any case ('quarantine') becomes its canonical value ('Quarantine')."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            for key in self.choices:
                if isinstance(key, str) and key.lower() == data.strip().lower():
                    return key
        return super().to_internal_value(data)


# ---------------------------------------------------------------------------
# errors and change summaries


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="What went wrong, for people.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field (request body field or query parameter); may be empty.",
    )


# "from" is a Python keyword, so this serializer is built from a dict.
StateChangeSerializer = type(
    "StateChangeSerializer",
    (serializers.Serializer,),
    {
        "from": serializers.ChoiceField(choices=AccessState.choices),
        "to": serializers.ChoiceField(choices=AccessState.choices),
        "count": serializers.IntegerField(min_value=1),
        "__doc__": "How many devices moved from one access state to another.",
    },
)


class ChangeSummarySerializer(serializers.Serializer):
    changed = serializers.IntegerField(help_text="How many existing devices changed access state.")
    changes = StateChangeSerializer(many=True)
    message = serializers.CharField(help_text="The audit log's summary of the change.")


def change_summary(result) -> dict:
    """{'changed': 12, 'changes': [{'from': 'Quarantined', 'to': 'Allowed', 'count': 12}]}."""
    counts = {k: n for k, n in result.summary().items() if k[0] != k[1]}
    return {
        "changed": sum(counts.values()),
        "changes": [
            {"from": before, "to": after, "count": n}
            for (before, after), n in sorted(counts.items())
        ],
        "message": result.event.message if result.event is not None else "",
    }


def preview_summary(counts) -> dict:
    counts = {k: n for k, n in counts.items() if k[0] != k[1] and n}
    return {
        "changed": sum(counts.values()),
        "changes": [
            {"from": before, "to": after, "count": n}
            for (before, after), n in sorted(counts.items())
        ],
    }


class PreviewSerializer(serializers.Serializer):
    changed = serializers.IntegerField(
        help_text="How many existing devices would change access state."
    )
    changes = StateChangeSerializer(many=True)


# ---------------------------------------------------------------------------
# the signed-in user


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    can_manage_devices = serializers.BooleanField()
    can_manage_rules = serializers.BooleanField()
    can_manage_settings = serializers.BooleanField()
    can_read_notifications = serializers.BooleanField()


# ---------------------------------------------------------------------------
# organisation settings


class OrgSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrgSettings
        fields = [
            "default_access_level",
            "admin_mail_recipients",
            "user_mail_insert",
            "discovery_window_minutes",
            "allow_health_probes",
            "send_user_mail",
            "admin_mail_mode",
            "admin_digest_minutes",
            "new_device_alert",
            "purge_quarantined_after_days",
            "self_approval",
            "user_mail_inserts",
            "default_language",
            "time_zone",
            "rules_version",
            "updated_at",
        ]
        read_only_fields = fields

    admin_mail_recipients = serializers.ListField(child=serializers.EmailField())


class OrgSettingsUpdateSerializer(serializers.Serializer):
    """Only the fields given are changed. admin_mail_recipients replaces the list."""

    default_access_level = LenientChoiceField(choices=AccessLevel.choices, required=False)
    admin_mail_recipients = serializers.ListField(
        child=serializers.EmailField(), max_length=100, required=False
    )
    user_mail_insert = serializers.CharField(
        max_length=4000, allow_blank=True, trim_whitespace=False, required=False
    )
    discovery_window_minutes = serializers.IntegerField(min_value=0, max_value=1440, required=False)
    allow_health_probes = serializers.BooleanField(required=False)
    send_user_mail = serializers.BooleanField(required=False)
    admin_mail_mode = LenientChoiceField(choices=AdminMailMode.choices, required=False)
    admin_digest_minutes = serializers.IntegerField(min_value=1, max_value=1440, required=False)
    new_device_alert = serializers.BooleanField(required=False)
    purge_quarantined_after_days = serializers.IntegerField(
        min_value=1,
        max_value=3650,
        allow_null=True,
        required=False,
        help_text="Remove devices that have waited this many days in quarantine (a daily "
        "task); null: never.",
    )
    self_approval = LenientChoiceField(
        choices=SelfApproval.choices,
        required=False,
        help_text="Whether end users may approve their own quarantined devices.",
    )
    user_mail_inserts = serializers.DictField(
        child=serializers.CharField(max_length=4000, allow_blank=True, trim_whitespace=False),
        required=False,
        help_text='The user mail insert per language ({"de": "..."}); replaces them all. A '
        "mail in a language without one takes the default language's, then user_mail_insert.",
    )
    default_language = serializers.ChoiceField(
        choices=settings.LANGUAGES,
        required=False,
        help_text="Mails and phone notices of mailboxes whose language is not known, and "
        "admin mails.",
    )
    time_zone = serializers.CharField(
        max_length=64, required=False, help_text="The IANA zone of times in mails."
    )
    grandfather_first = serializers.BooleanField(
        required=False,
        default=False,
        write_only=True,
        help_text="With a new default_access_level: first put every device that the "
        "current default allows on its mailbox's allowed list (both or neither happen), as "
        "the settings page's 'grandfather today's devices first'.",
    )


class OrgSettingsChangeSerializer(ChangeSummarySerializer):
    org_settings = OrgSettingsSerializer()
    grandfathered = serializers.IntegerField(
        help_text="Devices put on their mailbox's allowed list first (grandfather_first)."
    )


class OrgSettingsPreviewSerializer(serializers.Serializer):
    default_access_level = LenientChoiceField(choices=AccessLevel.choices)


# ---------------------------------------------------------------------------
# access policies and organisation-wide DeviceIds


class AccessPolicyRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccessPolicy
        fields = ["id", "name", "default_access_level"]
        read_only_fields = fields


class AccessPolicySerializer(serializers.ModelSerializer):
    domains = serializers.ListField(child=serializers.CharField(), read_only=True)
    directory_groups = serializers.ListField(child=serializers.CharField(), read_only=True)
    mailbox_count = serializers.IntegerField(
        read_only=True, help_text="Mailboxes that follow the policy (members and by domain/group)."
    )
    member_count = serializers.IntegerField(
        read_only=True, help_text="Mailboxes that are explicit members."
    )

    class Meta:
        model = AccessPolicy
        fields = [
            "id",
            "name",
            "default_access_level",
            "domains",
            "directory_groups",
            "priority",
            "mailbox_count",
            "member_count",
            "created_at",
        ]
        read_only_fields = fields


class AccessPolicyWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    default_access_level = LenientChoiceField(choices=AccessLevel.choices)
    domains = serializers.ListField(
        child=serializers.CharField(max_length=253),
        max_length=MAX_LIST_ITEMS,
        required=False,
        help_text="Mail domains: every mailbox whose primary SMTP address is in one follows "
        "the policy, unless it is an explicit member of another. Replaces the list.",
    )
    directory_groups = serializers.ListField(
        child=serializers.CharField(max_length=512),
        max_length=MAX_LIST_ITEMS,
        required=False,
        help_text="Directory group DNs (cn=sales,ou=groups,dc=example,dc=org): their members "
        "follow the policy, as of each directory sync and sign-in. Replaces the list.",
    )
    priority = serializers.IntegerField(
        min_value=0,
        max_value=10000,
        required=False,
        help_text="When several policies cover a mailbox, the lowest number wins (default 100).",
    )


class AccessPolicyChangeSerializer(ChangeSummarySerializer):
    access_policy = AccessPolicySerializer()


class AccessPolicyRemovalSerializer(ChangeSummarySerializer):
    access_policy = AccessPolicyRefSerializer(help_text="The policy as it was before removal.")


class OrgDeviceIdSerializer(serializers.ModelSerializer):
    device_count = serializers.IntegerField(
        read_only=True, help_text="Partnerships with this DeviceId, in any mailbox."
    )

    class Meta:
        model = OrgDeviceId
        fields = ["id", "device_id", "note", "device_count", "created_at"]
        read_only_fields = fields


class OrgDeviceIdWriteSerializer(serializers.Serializer):
    device_id = serializers.CharField(max_length=MAX_DEVICE_ID)
    note = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class OrgDeviceIdChangeSerializer(ChangeSummarySerializer):
    org_device_id = OrgDeviceIdSerializer()


class OrgDeviceIdRemovalSerializer(ChangeSummarySerializer):
    org_device_id = OrgDeviceIdSerializer(help_text="The entry as it was before removal.")


# ---------------------------------------------------------------------------
# mailboxes


class MailboxSerializer(serializers.ModelSerializer):
    login = serializers.SerializerMethodField()
    device_count = serializers.IntegerField(read_only=True)
    access_policy = AccessPolicyRefSerializer(
        read_only=True,
        allow_null=True,
        help_text="The access policy that applies, or null: the organisation default.",
    )
    allowed_device_ids = serializers.SerializerMethodField()
    blocked_device_ids = serializers.SerializerMethodField()

    class Meta:
        model = Mailbox
        fields = [
            "id",
            "alias",
            "primary_smtp_address",
            "display_name",
            "activesync_enabled",
            "login",
            "device_count",
            "access_policy",
            "access_policy_pinned",
            "allowed_device_ids",
            "blocked_device_ids",
            "language",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_login(self, mailbox) -> str | None:
        return mailbox.user.get_username() if mailbox.user is not None else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_device_ids(self, mailbox):
        return _listed(mailbox, DeviceIdList.ALLOWED)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_blocked_device_ids(self, mailbox):
        return _listed(mailbox, DeviceIdList.BLOCKED)


def _listed(mailbox, kind: str) -> list[str]:
    # Reads the prefetched entries (views prefetch device_ids), so no query per mailbox.
    entries = sorted(mailbox.device_ids.all(), key=lambda e: e.device_key)
    return [e.device_id for e in entries if e.list == kind]


class DeviceIdListsSerializer(serializers.Serializer):
    allowed_device_ids = serializers.ListField(child=serializers.CharField())
    blocked_device_ids = serializers.ListField(child=serializers.CharField())


def _device_id_list(help_text: str):
    return serializers.ListField(
        child=serializers.CharField(max_length=MAX_DEVICE_ID),
        max_length=MAX_LIST_ITEMS,
        required=False,
        default=list,
        help_text=help_text,
    )


class DeviceIdListsUpdateSerializer(serializers.Serializer):
    """Adding a DeviceId to one list takes it off the other, as allow/block do."""

    add_allowed = _device_id_list("DeviceIds to put on the allowed list.")
    remove_allowed = _device_id_list("DeviceIds to take off the allowed list.")
    add_blocked = _device_id_list("DeviceIds to put on the blocked list.")
    remove_blocked = _device_id_list("DeviceIds to take off the blocked list.")


class MailboxChangeSerializer(ChangeSummarySerializer):
    mailbox = MailboxSerializer()


class MailboxUpdateSerializer(serializers.Serializer):
    activesync_enabled = serializers.BooleanField(
        help_text="Off: every device of the mailbox is Blocked / Policy."
    )


class MailboxPolicySerializer(serializers.Serializer):
    access_policy = serializers.IntegerField(
        allow_null=True,
        min_value=1,
        max_value=MAX_ID,
        help_text="The id of the policy the mailbox becomes an explicit member of; null: "
        "the mailbox follows its domain's (or directory group's) policy again.",
    )


# ---------------------------------------------------------------------------
# rules


class RuleRefSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()

    class Meta:
        model = DeviceAccessRule
        fields = ["id", "name", "characteristic", "query_string", "access_level"]
        read_only_fields = fields

    def get_name(self, rule) -> str:
        """How Exchange names a rule: 'iPhone (DeviceType)'."""
        return f"{rule.query_string} ({rule.characteristic})"


class RuleSerializer(RuleRefSerializer):
    device_count = serializers.IntegerField(
        read_only=True, help_text="Devices whose access state this rule decides now."
    )
    created_by = serializers.SerializerMethodField()

    class Meta(RuleRefSerializer.Meta):
        fields = [*RuleRefSerializer.Meta.fields, "device_count", "created_by"]
        fields += ["created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_created_by(self, rule) -> str | None:
        return rule.created_by.get_username() if rule.created_by is not None else None


class RuleWriteSerializer(serializers.Serializer):
    characteristic = LenientChoiceField(choices=Characteristic.choices)
    query_string = serializers.CharField(
        max_length=256,
        help_text="Exact value (any case), or a pattern with * as wildcard; on DeviceOS and "
        "UserAgent also a version comparison FAMILY OP VERSION, OP one of <, <=, >, >= "
        "(e.g. 'iOS < 17'). A comparison that does not parse is a 400 with its reason.",
    )
    access_level = LenientChoiceField(choices=AccessLevel.choices)


class RuleChangeSerializer(ChangeSummarySerializer):
    rule = RuleSerializer()


class RuleRemovalSerializer(ChangeSummarySerializer):
    rule = RuleRefSerializer(help_text="The rule as it was before it was removed.")


# ---------------------------------------------------------------------------
# devices


class DeviceSerializer(serializers.ModelSerializer):
    mailbox = serializers.CharField(source="mailbox.alias", read_only=True)
    access_rule = RuleRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = MobileDevice
        fields = [
            "id",
            "mailbox",
            "mailbox_id",
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
            "first_seen",
            "last_seen",
            "state_changed_at",
            # "Was this you?" (the signed link in the user mail): "mine", "not-mine" or "".
            "owner_answer",
            "owner_answered_at",
        ]
        read_only_fields = fields


class DeviceChangeSerializer(ChangeSummarySerializer):
    device = DeviceSerializer()


# ---------------------------------------------------------------------------
# access check


class AccessCheckSerializer(serializers.Serializer):
    """A device that may not exist yet: what would the gate decide for it now?"""

    mailbox = serializers.CharField(
        max_length=254, help_text="Alias, primary SMTP address or DOMAIN\\alias."
    )
    device_id = serializers.CharField(max_length=MAX_DEVICE_ID)
    device_type = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    device_model = serializers.CharField(
        max_length=256, required=False, default="", allow_blank=True
    )
    device_os = serializers.CharField(max_length=256, required=False, default="", allow_blank=True)
    user_agent = serializers.CharField(max_length=256, required=False, default="", allow_blank=True)
    device_info_received = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Whether the device has sent its DeviceInformation (model, OS). "
        "False: a device on its first request, which may be in device discovery.",
    )


class AccessDecisionSerializer(serializers.Serializer):
    mailbox = serializers.CharField(help_text="The mailbox's alias.")
    access_state = serializers.ChoiceField(choices=AccessState.choices)
    access_state_reason = serializers.ChoiceField(choices=AccessReason.choices)
    rule = RuleRefSerializer(allow_null=True, help_text="The deciding rule, if a rule decided.")
    explanation = serializers.CharField()


# ---------------------------------------------------------------------------
# audit and notifications


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", read_only=True)
    before = serializers.JSONField(read_only=True, allow_null=True)
    after = serializers.JSONField(read_only=True, allow_null=True)
    source = serializers.ChoiceField(choices=AuditSource.choices, read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "time",
            "actor",
            "actor_id",
            "source",
            "client_ip",
            "request_id",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "message",
        ]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = [
            "id",
            "kind",
            "channel",
            "recipient",
            "status",
            "attempts",
            "last_error",
            "subject",
            "created_at",
            "hold_until",
            "next_attempt_at",
            "sent_at",
            "digest_id",
        ]
        read_only_fields = fields


class NotificationResendSerializer(serializers.Serializer):
    notification = NotificationSerializer(
        help_text="The mail queued again: the same row when it had failed, a copy when it was sent."
    )
    message = serializers.CharField()


# ---------------------------------------------------------------------------
# lifecycle: grandfathering, purge of stale quarantine


class GrandfatherPreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField(
        help_text="Devices allowed by the default that would be put on their mailbox's "
        "allowed list."
    )


class GrandfatherSerializer(ChangeSummarySerializer):
    count = serializers.IntegerField(help_text="Devices put on their mailbox's allowed list.")


class PurgeQuerySerializer(serializers.Serializer):
    older_than_days = serializers.IntegerField(
        min_value=0,
        max_value=36500,
        help_text="Devices in quarantine for at least this many days; 0: every one.",
    )


PURGE_LISTED = 100  # devices named in a purge answer; the count covers them all


class PurgeSerializer(serializers.Serializer):
    older_than_days = serializers.IntegerField()
    count = serializers.IntegerField(help_text="Partnerships removed (or that would be).")
    devices = DeviceSerializer(
        many=True, help_text=f"The first {PURGE_LISTED} of them, as they were."
    )
    message = serializers.CharField()


# ---------------------------------------------------------------------------
# more device actions: replace, bulk, self-approval, history


class DeviceReplaceSerializer(serializers.Serializer):
    old = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        help_text="The id of the approved device of the same mailbox that this one replaces: "
        "it is removed and its DeviceId taken off the allowed list.",
    )


class DeviceBulkSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=[("allow", "allow"), ("block", "block")])
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=500,
        help_text="Device ids, at most 500.",
    )


class DeviceBulkFailureSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    message = serializers.CharField()


class DeviceBulkResultSerializer(serializers.Serializer):
    done = serializers.ListField(child=serializers.IntegerField(), help_text="Device ids.")
    failed = DeviceBulkFailureSerializer(many=True)
    missing = serializers.ListField(
        child=serializers.IntegerField(), help_text="Ids of devices that do not exist."
    )
    changed = serializers.IntegerField()
    changes = StateChangeSerializer(many=True)
    message = serializers.CharField()


class DeviceHistorySerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    from_state = serializers.ChoiceField(choices=AccessState.choices, allow_blank=True)
    to_state = serializers.ChoiceField(choices=AccessState.choices)
    to_reason = serializers.CharField()
    rule = RuleRefSerializer(allow_null=True)
    actor = serializers.CharField(allow_blank=True)
    message = serializers.CharField(allow_blank=True, help_text="The audit event's summary.")


# ---------------------------------------------------------------------------
# rule change jobs


class RuleChangeJobSerializer(serializers.ModelSerializer):
    description = serializers.SerializerMethodField()
    requested_by = serializers.CharField(source="user_name", read_only=True)
    params = serializers.JSONField(
        read_only=True,
        help_text="characteristic, query_string, access_level (create, update); rule_id and "
        "rule, the rule's words when the job was made (update, delete).",
    )
    finished = serializers.BooleanField(read_only=True)
    elapsed_seconds = serializers.SerializerMethodField()

    class Meta:
        model = RuleChangeJob
        fields = [
            "id",
            "kind",
            "status",
            "finished",
            "description",
            "params",
            "requested_by",
            "source",
            "devices_total",
            "progress",
            "message",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "elapsed_seconds",
        ]
        read_only_fields = fields
        extra_kwargs = {"progress": {"help_text": "Percent done, 0-100; 100 once done."}}

    def get_description(self, job) -> str:
        return describe_job(job)

    def get_elapsed_seconds(self, job) -> int:
        """Running time so far (queued or running), or how long it took."""
        return job.elapsed_seconds()


class RuleChangeQueuedSerializer(serializers.Serializer):
    job = RuleChangeJobSerializer(help_text="Poll /api/v1/rule-change-jobs/{id} until finished.")
    message = serializers.CharField()
