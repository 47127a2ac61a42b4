"""Filters of the API's lists. The device filters are devices.filters.DeviceFilterSet,
shared with the quarantine page; these serve lists that only the API has."""

from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Q
from django_filters.fields import IsoDateTimeField

from devices.models import (
    AccessLevel,
    AccessPolicy,
    AuditEvent,
    AuditSource,
    Characteristic,
    DeviceAccessRule,
    Mailbox,
    OrgDeviceId,
    RuleChangeJob,
)
from notifications.models import Kind, Notification, Status


class MailboxFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        max_length=100,
        label="Search alias, display name and primary SMTP address (substring, any case).",
    )
    alias = django_filters.CharFilter(lookup_expr="iexact", max_length=64, label="Alias.")
    activesync_enabled = django_filters.BooleanFilter(label="ActiveSync on or off.")

    class Meta:
        model = Mailbox
        fields = []

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(alias__icontains=value)
            | Q(display_name__icontains=value)
            | Q(primary_smtp_address__icontains=value)
        )


class RuleFilterSet(django_filters.FilterSet):
    characteristic = django_filters.ChoiceFilter(choices=Characteristic.choices)
    access_level = django_filters.ChoiceFilter(choices=AccessLevel.choices)
    q = django_filters.CharFilter(
        field_name="query_string",
        lookup_expr="icontains",
        max_length=256,
        label="Search the query strings (substring, any case).",
    )

    class Meta:
        model = DeviceAccessRule
        fields = []


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, in UTC.

    Python takes offsets up to 23:59, PostgreSQL only up to 15:59: a time such
    as 2026-01-13T07:02:04-18:54 must not reach the query with its offset
    (a DataError, a 500).
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Enter a time between the years 1 and 9999.") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class AuditEventFilterSet(django_filters.FilterSet):
    since = UtcDateTimeFilter(
        field_name="time", lookup_expr="gte", label="At or after this time (ISO 8601)."
    )
    until = UtcDateTimeFilter(
        field_name="time", lookup_expr="lt", label="Before this time (ISO 8601)."
    )
    actor = django_filters.CharFilter(
        field_name="actor_name", lookup_expr="iexact", max_length=150, label="Username."
    )
    source = django_filters.ChoiceFilter(choices=AuditSource.choices)
    action = django_filters.CharFilter(
        method="filter_action",
        max_length=64,
        label="Action, e.g. device.allow; 'device.*' matches every device action.",
    )
    object_type = django_filters.CharFilter(max_length=32, label="Object type, e.g. MobileDevice.")
    object_id = django_filters.CharFilter(max_length=64)
    request_id = django_filters.CharFilter(max_length=64)
    q = django_filters.CharFilter(
        method="search", max_length=100, label="Search the object and the message."
    )

    class Meta:
        model = AuditEvent
        fields = []

    def filter_action(self, queryset, name, value):
        value = value.strip()
        if value.endswith("*"):
            return queryset.filter(action__startswith=value[:-1])
        return queryset.filter(action=value)

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(object_repr__icontains=value) | Q(message__icontains=value))


class NotificationFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Status.choices)
    kind = django_filters.ChoiceFilter(choices=Kind.choices)
    recipient = django_filters.CharFilter(
        lookup_expr="icontains", max_length=254, label="Recipient address (substring)."
    )

    class Meta:
        model = Notification
        fields = []


class AccessPolicyFilterSet(django_filters.FilterSet):
    default_access_level = django_filters.ChoiceFilter(choices=AccessLevel.choices)
    q = django_filters.CharFilter(
        field_name="name",
        lookup_expr="icontains",
        max_length=100,
        label="Search the names (substring, any case).",
    )

    class Meta:
        model = AccessPolicy
        fields = []


class OrgDeviceIdFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search", max_length=100, label="Search the DeviceIds and notes (substring)."
    )

    class Meta:
        model = OrgDeviceId
        fields = []

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(device_key__icontains=value) | Q(note__icontains=value))


class RuleChangeJobFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RuleChangeJob.Status.choices)
    kind = django_filters.ChoiceFilter(choices=RuleChangeJob.Kind.choices)

    class Meta:
        model = RuleChangeJob
        fields = []
