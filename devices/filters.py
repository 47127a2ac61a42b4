"""The device list filters, one definition for the quarantine page and the REST API.

NetBox's rule: one filter serves the list page and the API, so that a query
string means the same thing in both. The parameter names are the quarantine
page's (q, state, device_type, device_model, age, sort), plus mailbox,
device_id and the first-seen age in days that scripts ask for.

A view hands it request.GET and a queryset it has already narrowed to what the
user may see; `.qs` is the filtered, ordered queryset. Invalid values are
reported in `.errors` (the API answers 400 with them; a page may ignore them).
"""

from datetime import timedelta

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone

from .models import AccessState, Mailbox, MobileDevice

MAX_DAYS = 36500

# "Waiting": how long a device has been in its access state.
AGES = {
    "1h": ("waiting more than an hour", timedelta(hours=1)),
    "1d": ("waiting more than a day", timedelta(days=1)),
    "7d": ("waiting more than a week", timedelta(days=7)),
    "30d": ("waiting more than 30 days", timedelta(days=30)),
}

# sort key -> (label, order_by); every order ends in a unique column so pages are stable.
DEVICE_SORTS = {
    "waiting": ("Waiting longest first", ("state_changed_at", "id")),
    "-waiting": ("Waiting shortest first", ("-state_changed_at", "-id")),
    "first_seen": ("First seen, oldest first", ("first_seen", "id")),
    "-first_seen": ("First seen, newest first", ("-first_seen", "-id")),
    "last_seen": ("Last seen, oldest first", ("last_seen", "id")),
    "-last_seen": ("Last seen, newest first", ("-last_seen", "-id")),
    "user": ("User", ("mailbox__alias", "device_key", "id")),
    "type": ("Device type", ("device_type", "device_model", "id")),
    "model": ("Model", ("device_model", "device_type", "id")),
    "state": ("Access state", ("access_state", "mailbox__alias", "id")),
}
DEFAULT_SORT = "-first_seen"

SEARCH_FIELDS = (
    "device_id",
    "mailbox__alias",
    "mailbox__display_name",
    "mailbox__primary_smtp_address",
    "device_type",
    "device_model",
    "device_os",
    "user_agent",
    "friendly_name",
)


class DaysFilter(django_filters.NumberFilter):
    """A whole number of days, 0 to 100 years."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", MAX_DAYS)
        super().__init__(*args, **kwargs)


class DeviceFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        max_length=100,
        label="Search DeviceId, mailbox alias, display name or address, type, model, OS, "
        "user agent and friendly name (substring, any case).",
    )
    state = django_filters.ChoiceFilter(
        field_name="access_state", choices=AccessState.choices, label="Access state."
    )
    mailbox = django_filters.CharFilter(
        method="filter_mailbox",
        max_length=254,
        label="Only this mailbox's devices: alias, primary SMTP address or DOMAIN\\alias.",
    )
    device_id = django_filters.CharFilter(
        method="filter_device_id", max_length=64, label="DeviceId (any case)."
    )
    device_type = django_filters.CharFilter(
        lookup_expr="iexact", max_length=64, label="DeviceType (any case)."
    )
    device_model = django_filters.CharFilter(
        lookup_expr="iexact", max_length=256, label="DeviceModel (any case)."
    )
    older_than_days = DaysFilter(
        method="filter_older", label="First seen at least this many days ago."
    )
    newer_than_days = DaysFilter(
        method="filter_newer", label="First seen at most this many days ago."
    )
    age = django_filters.ChoiceFilter(
        method="filter_age",
        choices=[(key, label) for key, (label, _) in AGES.items()],
        label="How long the device has been in its access state.",
    )
    sort = django_filters.ChoiceFilter(
        method="sort_by",
        choices=[(key, label) for key, (label, _) in DEVICE_SORTS.items()],
        label=f"Order of the list (default {DEFAULT_SORT}).",
    )

    class Meta:
        model = MobileDevice
        fields = []

    def __init__(self, data=None, queryset=None, *, default_sort: str = DEFAULT_SORT, **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.default_sort = default_sort
        self.now = timezone.now()

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if not self.form.cleaned_data.get("sort"):
            queryset = queryset.order_by(*DEVICE_SORTS[self.default_sort][1])
        return queryset

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        # One LIKE on each table's lower-cased search column (MobileDevice.search_text,
        # Mailbox.search_text); the mailbox's through a subquery, not a join: the
        # devices' side then comes from the quarantine list's covering index alone.
        needle = value.lower()
        match = Q(search_text__contains=needle) | Q(
            mailbox__in=Mailbox.objects.filter(search_text__contains=needle).values("pk")
        )
        return queryset.filter(match)

    def filter_mailbox(self, queryset, name, value):
        identity = value.strip()
        if "\\" in identity:
            identity = identity.rsplit("\\", 1)[1]
        field = (
            "mailbox__primary_smtp_address__iexact" if "@" in identity else "mailbox__alias__iexact"
        )
        return queryset.filter(**{field: identity})

    def filter_device_id(self, queryset, name, value):
        return queryset.filter(device_key=value.strip().lower())

    def filter_older(self, queryset, name, value: int):
        return queryset.filter(first_seen__lte=self.now - timedelta(days=value))

    def filter_newer(self, queryset, name, value: int):
        return queryset.filter(first_seen__gte=self.now - timedelta(days=value))

    def filter_age(self, queryset, name, value):
        return queryset.filter(state_changed_at__lte=self.now - AGES[value][1])

    def sort_by(self, queryset, name, value):
        return queryset.order_by(*DEVICE_SORTS[value][1])
