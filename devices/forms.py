"""The ECP's forms: plain forms.Form, validated field by field.

The device lists filter with devices.filters.DeviceFilterSet, the definition
the REST API uses too (NetBox's "one filter serves the page and the API");
the sorts and waiting ages live there. The other lists' filters are here.
"""

from datetime import datetime, time, timedelta

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from .actions import MAX_DEVICE_ID, ActionError, clean_query_string
from .filters import DeviceFilterSet
from .languages import valid_time_zone
from .models import (
    AccessLevel,
    AdminMailMode,
    AuditSource,
    Characteristic,
    DeviceClass,
    DeviceIdList,
    SelfApproval,
)

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50


def device_families() -> tuple[list[str], list[str]]:
    """The DeviceTypes and DeviceModels ever seen, from DeviceClass, in one query."""
    types, models = set(), set()
    for device_type, device_model in DeviceClass.objects.values_list("device_type", "device_model"):
        if device_type:
            types.add(device_type)
        if device_model:
            models.add(device_model)
    return sorted(types, key=str.casefold), sorted(models, key=str.casefold)


def per_page_field() -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label="Per page",
        required=False,
        coerce=int,
        empty_value=DEFAULT_PAGE_SIZE,
        choices=[(n, n) for n in PAGE_SIZES],
    )


def per_page_problem(data) -> str:
    """What to tell someone whose `per_page` is not a page size ('' when it is one, or none)."""
    raw = (data.get("per_page") or "").strip()
    if not raw or raw in {str(n) for n in PAGE_SIZES}:
        return ""
    sizes = ", ".join(str(n) for n in PAGE_SIZES)
    shown = raw if len(raw) <= 20 else raw[:20] + "…"
    return (
        f"per_page={shown!r} is not a page size: showing {DEFAULT_PAGE_SIZE} per page."
        f" Choose one of {sizes}."
    )


def page_size(data) -> int:
    """The `per_page` a query string asks for, when it is one of PAGE_SIZES."""
    field = per_page_field()
    try:
        return field.clean(data.get("per_page", ""))
    except ValidationError:
        return DEFAULT_PAGE_SIZE


class DeviceListFilterSet(DeviceFilterSet):
    """The device pages' filters: the shared ones, plus the rule that decides a device
    (the rule list links to /devices/?rule=<pk>)."""

    rule = django_filters.NumberFilter(method="filter_rule", label="Decided by this rule.")

    ACTIVE = ("q", "state", "device_type", "device_model", "rule", "age", "mailbox", "device_id")

    def filter_rule(self, queryset, name, value):
        return queryset.filter(access_rule_id=int(value))

    def value(self, name: str):
        """The valid value of a filter, or '' (invalid values are not applied)."""
        self.form.is_valid()
        value = self.form.cleaned_data.get(name)
        return "" if value is None else value

    @property
    def sort_key(self) -> str:
        return self.value("sort") or self.default_sort

    def active(self) -> bool:
        return any(self.value(name) not in ("", None) for name in self.ACTIVE)


class MailboxFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=100)
    per_page = per_page_field()

    def value(self, name: str):
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        if name in self.cleaned_data:
            return self.cleaned_data[name]
        return DEFAULT_PAGE_SIZE if name == "per_page" else ""

    def filter(self, mailboxes: QuerySet) -> QuerySet:
        q = (self.value("q") or "").strip()
        if q:
            mailboxes = mailboxes.filter(
                Q(alias__icontains=q)
                | Q(display_name__icontains=q)
                | Q(primary_smtp_address__icontains=q)
            )
        return mailboxes.order_by("alias", "id")


class BulkDevicesForm(forms.Form):
    action = forms.ChoiceField(choices=[("allow", "Allow"), ("block", "Block")])
    ids = forms.CharField(required=False)

    MAX = 500

    def __init__(self, data=None, **kwargs):
        if data is not None and hasattr(data, "getlist"):
            # ids arrive as repeated checkboxes (ids=1&ids=2) or one "1,2,3" value.
            data = {"action": data.get("action", ""), "ids": ",".join(data.getlist("ids"))}
        super().__init__(data, **kwargs)

    def clean_ids(self):
        raw = [part.strip() for part in self.cleaned_data["ids"].split(",") if part.strip()]
        try:
            ids = sorted({int(part) for part in raw})
        except ValueError:
            raise ValidationError("Device ids must be numbers.") from None
        if not ids:
            raise ValidationError("Select at least one device.")
        if len(ids) > self.MAX:
            raise ValidationError(f"Select at most {self.MAX} devices at once.")
        return ids


class RuleForm(forms.Form):
    characteristic = forms.ChoiceField(
        label="Characteristic",
        choices=Characteristic.choices,
        initial=Characteristic.DEVICE_TYPE,
        help_text="Which value of the device the query string is compared with.",
    )
    query_string = forms.CharField(
        label="Query string",
        max_length=256,
        help_text="Compared case-insensitively; exact unless it holds * (any characters). "
        "On DeviceOS and UserAgent, a version comparison: FAMILY OP VERSION with OP one of "
        "<, <=, >, >=, e.g. iOS < 17 or Android <= 12.",
    )
    access_level = forms.ChoiceField(
        label="Access level", choices=AccessLevel.choices, initial=AccessLevel.ALLOW
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The family picker: the values seen for the chosen characteristic (static/js/ecp.js
        # follows a change of characteristic).
        characteristic = self["characteristic"].value()
        self.fields["query_string"].widget.attrs.update(
            {"list": f"values-{characteristic}", "autocomplete": "off"}
        )

    def clean_query_string(self):
        value = self.cleaned_data["query_string"].strip()
        if not value:
            raise ValidationError("The query string must not be empty.")
        return value

    def clean(self):
        data = super().clean()
        if data.get("characteristic") and data.get("query_string"):
            try:  # the action's own check, shown on the field (the action checks again)
                data["query_string"] = clean_query_string(
                    data["characteristic"], data["query_string"]
                )
            except ActionError as e:
                self.add_error("query_string", str(e))
        return data

    def rule_values(self) -> dict:
        return {
            "characteristic": self.cleaned_data["characteristic"],
            "query_string": self.cleaned_data["query_string"],
            "access_level": self.cleaned_data["access_level"],
        }


class SimilarDevicesRuleForm(forms.Form):
    """ "Create a rule for similar devices": the device's family, optionally its model only."""

    device_type = forms.CharField(
        label="Device family (DeviceType)",
        max_length=64,
        help_text="The rule applies to every device of this family.",
        widget=forms.TextInput(attrs={"list": "values-DeviceType", "autocomplete": "off"}),
    )
    device_model = forms.CharField(
        label="Model",
        max_length=256,
        required=False,
        widget=forms.TextInput(attrs={"list": "values-DeviceModel", "autocomplete": "off"}),
    )
    only_this_model = forms.BooleanField(
        label="Only this model",
        required=False,
        help_text="Match the model instead of the whole family.",
    )
    access_level = forms.ChoiceField(
        label="Access level", choices=AccessLevel.choices, initial=AccessLevel.ALLOW
    )

    def clean_device_type(self):
        value = self.cleaned_data["device_type"].strip()
        if not value:
            raise ValidationError("The device family must not be empty.")
        return value

    def clean_device_model(self):
        return self.cleaned_data["device_model"].strip()

    def clean(self):
        data = super().clean()
        if data.get("only_this_model") and not data.get("device_model"):
            self.add_error(
                "device_model",
                'Type the model to match, or untick "Only this model" to match the whole family.',
            )
        return data

    def rule_values(self) -> dict:
        data = self.cleaned_data
        if data["only_this_model"]:
            return {
                "characteristic": Characteristic.DEVICE_MODEL.value,
                "query_string": data["device_model"],
                "access_level": data["access_level"],
            }
        return {
            "characteristic": Characteristic.DEVICE_TYPE.value,
            "query_string": data["device_type"],
            "access_level": data["access_level"],
        }


class DeviceTestForm(forms.Form):
    """The "test a device" box: which rule or default would decide a device like this?"""

    device_type = forms.CharField(label="DeviceType", max_length=64, required=False)
    device_model = forms.CharField(label="Model", max_length=256, required=False)
    device_os = forms.CharField(label="OS", max_length=256, required=False)
    user_agent = forms.CharField(label="User agent", max_length=256, required=False)
    info_received = forms.BooleanField(
        label="The device has sent its DeviceInformation (model and OS)",
        required=False,
        initial=True,
    )

    def clean(self):
        data = super().clean()
        for name in ("device_type", "device_model", "device_os", "user_agent"):
            data[name] = (data.get(name) or "").strip()
        if not any(data[n] for n in ("device_type", "device_model", "device_os", "user_agent")):
            raise ValidationError("Type at least one of DeviceType, model, OS or user agent.")
        return data


class OrgSettingsForm(forms.Form):
    default_access_level = forms.ChoiceField(
        label=gettext_lazy("Default access level"),
        choices=AccessLevel.choices,
        widget=forms.RadioSelect,
        help_text=gettext_lazy("What happens to a new device that no list or rule decides."),
    )
    admin_mail_recipients = forms.CharField(
        label=gettext_lazy("Admin mail recipients"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "One address per line (or separated by commas). They are told about "
            "every quarantined device."
        ),
    )
    user_mail_insert = forms.CharField(
        label=gettext_lazy("User mail insert"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy(
            "Added to the mail users get when a device is quarantined or blocked, "
            "and shown on their My devices page. Plain text."
        ),
    )
    discovery_window_minutes = forms.IntegerField(
        label=gettext_lazy("Discovery window (minutes)"),
        min_value=0,
        max_value=1440,
        help_text=gettext_lazy(
            "How long a new device may take to report its model and OS before the default decides."
        ),
    )
    send_user_mail = forms.BooleanField(
        label=gettext_lazy("Mail users when their device is quarantined, blocked or approved"),
        required=False,
    )
    admin_mail_mode = forms.ChoiceField(
        label=gettext_lazy("Admin mail"), choices=AdminMailMode.choices
    )
    admin_digest_minutes = forms.IntegerField(
        label=gettext_lazy("Digest interval (minutes)"), min_value=1, max_value=1440
    )
    new_device_alert = forms.BooleanField(
        label=gettext_lazy("Alert admins about every new partnership, even when allowed"),
        required=False,
    )
    allow_health_probes = forms.BooleanField(
        label=gettext_lazy("Let Exchange health probes through without a partnership"),
        required=False,
    )
    purge_quarantined_after_days = forms.IntegerField(
        label=gettext_lazy("Purge quarantined devices after (days)"),
        required=False,
        min_value=1,
        max_value=3650,
        help_text=gettext_lazy(
            "Remove partnerships that have waited in quarantine longer than this. "
            "Leave empty to keep them until someone decides."
        ),
    )
    self_approval = forms.ChoiceField(
        label=gettext_lazy("Users may approve their own quarantined devices"),
        choices=SelfApproval.choices,
        widget=forms.RadioSelect,
        help_text=gettext_lazy(
            "From My devices; the admin mail recipients are told about each approval."
        ),
    )

    default_language = forms.ChoiceField(
        label=gettext_lazy("Default language"),
        choices=settings.LANGUAGES,
        required=False,
        help_text=gettext_lazy(
            "For mails and phone notices of mailboxes whose language is not known (from the"
            " mailbox page, the directory or the phone), and for admin mails."
        ),
    )
    time_zone = forms.CharField(
        label=gettext_lazy("Time zone of mails"),
        max_length=64,
        required=False,
        help_text=gettext_lazy("An IANA name such as Europe/Berlin; times in mails name it."),
    )

    FIELDS = (
        "default_access_level",
        "admin_mail_recipients",
        "user_mail_insert",
        "default_language",
        "time_zone",
        "discovery_window_minutes",
        "send_user_mail",
        "admin_mail_mode",
        "admin_digest_minutes",
        "new_device_alert",
        "allow_health_probes",
        "purge_quarantined_after_days",
        "self_approval",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # One insert per language, beside the one for every language (user_mail_insert).
        for code, name in settings.LANGUAGES:
            self.fields[f"user_mail_insert_{code}"] = forms.CharField(
                label=gettext_lazy("User mail insert in %(language)s") % {"language": name},
                required=False,
                max_length=4000,
                widget=forms.Textarea(attrs={"rows": 2}),
            )

    def insert_fields(self):
        return [self[f"user_mail_insert_{code}"] for code, _name in settings.LANGUAGES]

    @classmethod
    def initial_from(cls, org) -> dict:
        initial = {name: getattr(org, name) for name in cls.FIELDS}
        initial["admin_mail_recipients"] = "\n".join(org.admin_mail_recipients)
        for code, text in (org.user_mail_inserts or {}).items():
            initial[f"user_mail_insert_{code}"] = text
        return initial

    def clean_time_zone(self):
        value = self.cleaned_data["time_zone"].strip()
        zone = valid_time_zone(value)
        if value and not zone:
            raise ValidationError(
                gettext_lazy("Not a time zone; for example Europe/Berlin or UTC.")
            )
        return zone

    def clean_admin_mail_recipients(self):
        raw = self.cleaned_data["admin_mail_recipients"]
        addresses = [a.strip() for a in raw.replace(",", "\n").replace(";", "\n").splitlines()]
        addresses = [a for a in addresses if a]
        bad = []
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                bad.append(address)
        if bad:
            raise ValidationError(f"Not an e-mail address: {', '.join(bad)}")
        return addresses

    def set_org_settings_kwargs(self) -> dict:
        kwargs = {name: self.cleaned_data[name] for name in self.FIELDS}
        for name in ("default_language", "time_zone"):  # not posted: unchanged
            kwargs[name] = kwargs[name] or None
        if not any(f"user_mail_insert_{code}" in self.data for code, _ in settings.LANGUAGES):
            return kwargs
        kwargs["user_mail_inserts"] = {
            code: self.cleaned_data[f"user_mail_insert_{code}"]
            for code, _name in settings.LANGUAGES
        }
        return kwargs


class MailboxDeviceIdForm(forms.Form):
    """Add a DeviceId to, or take it off, a mailbox's allowed or blocked list."""

    device_id = forms.CharField(label="DeviceId", max_length=MAX_DEVICE_ID)
    list = forms.ChoiceField(label="List", choices=DeviceIdList.choices)

    def clean_device_id(self):
        value = self.cleaned_data["device_id"].strip()
        if not value or " " in value or not value.isprintable():
            raise ValidationError("A DeviceId has no spaces.")
        return value


class ActiveSyncForm(forms.Form):
    activesync_enabled = forms.TypedChoiceField(
        label="ActiveSync",
        choices=[("true", "On"), ("false", "Off")],
        coerce=lambda v: v == "true",
    )


class PolicyForm(forms.Form):
    """An access policy: a default access level for part of the organisation."""

    name = forms.CharField(label="Name", max_length=100)
    default_access_level = forms.ChoiceField(
        label="Default access level",
        choices=AccessLevel.choices,
        initial=AccessLevel.QUARANTINE,
        help_text="Used in place of the organisation default for its mailboxes' new devices.",
    )
    domains = forms.CharField(
        label="Mail domains",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line (or separated by commas): every mailbox whose primary SMTP "
        "address is in one of them follows this policy, unless it is an explicit member of "
        "another.",
    )
    directory_groups = forms.CharField(
        label="Directory groups",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One group DN per line, e.g. cn=sales,ou=groups,dc=example,dc=org: its "
        "members follow this policy, as of each directory sync and sign-in.",
    )
    priority = forms.IntegerField(
        label="Priority",
        min_value=0,
        max_value=10000,
        initial=100,
        help_text="When several policies name a mailbox's domain, the lowest number wins.",
    )

    @classmethod
    def initial_from(cls, policy) -> dict:
        return {
            "name": policy.name,
            "default_access_level": policy.default_access_level,
            "domains": "\n".join(policy.domains),
            "directory_groups": "\n".join(policy.directory_groups),
            "priority": policy.priority,
        }

    def clean_name(self):
        value = self.cleaned_data["name"].strip()
        if not value:
            raise ValidationError("A policy needs a name.")
        return value

    def clean_domains(self):
        raw = self.cleaned_data["domains"]
        for separator in (",", ";", " ", "\t"):
            raw = raw.replace(separator, "\n")
        return [d.strip() for d in raw.splitlines() if d.strip()]

    def clean_directory_groups(self):
        # DNs hold commas and spaces: one per line.
        return [g.strip() for g in self.cleaned_data["directory_groups"].splitlines() if g.strip()]

    def policy_values(self) -> dict:
        fields = ("name", "default_access_level", "domains", "directory_groups", "priority")
        return {name: self.cleaned_data[name] for name in fields}


class MailboxPolicyForm(forms.Form):
    """Explicit membership of an access policy, or none: follow the domain."""

    policy = forms.IntegerField(label="Access policy", required=False, min_value=1)


class OrgDeviceIdForm(forms.Form):
    device_id = forms.CharField(label="DeviceId", max_length=MAX_DEVICE_ID)
    note = forms.CharField(
        label="Note",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "Loan iPhone 3 (IT desk)"}),
    )

    def clean_device_id(self):
        value = self.cleaned_data["device_id"].strip()
        if not value or " " in value or not value.isprintable():
            raise ValidationError("A DeviceId has no spaces.")
        return value

    def clean_note(self):
        return self.cleaned_data["note"].strip()


# What the audit page's action filter suggests; any prefix works.
AUDIT_ACTIONS = (
    "device.",
    "device.allow",
    "device.block",
    "device.create",
    "device.purge",
    "device.reevaluate",
    "device.remove",
    "device.replace",
    "device.self_approve",
    "device.update",
    "devices.grandfather",
    "devices.import",
    "mailbox.",
    "mailboxes.import",
    "rule.",
    "policy.",
    "org_device_id.",
    "org_settings.update",
    "notification.resend",
    "api_token.",
)
AUDIT_OBJECT_TYPES = (
    ("MobileDevice", "Device"),
    ("Mailbox", "Mailbox"),
    ("DeviceAccessRule", "Rule"),
    ("AccessPolicy", "Access policy"),
    ("OrgDeviceId", "Organisation-wide DeviceId"),
    ("OrgSettings", "Organisation settings"),
    ("Notification", "Notification"),
    ("ApiToken", "API token"),
)


class AuditFilterForm(forms.Form):
    """The audit page's filters (GET); the CSV export takes the same query string."""

    actor = forms.CharField(label="Actor", required=False, max_length=150)
    action = forms.CharField(
        label="Action",
        required=False,
        max_length=64,
        help_text="An action or its beginning: device. finds every device action.",
    )
    object = forms.CharField(label="Object", required=False, max_length=100)
    object_type = forms.ChoiceField(
        label="Object type", required=False, choices=[("", "Any type"), *AUDIT_OBJECT_TYPES]
    )
    source = forms.ChoiceField(
        label="Source", required=False, choices=[("", "Any source"), *AuditSource.choices]
    )
    request_id = forms.CharField(label="Request id", required=False, max_length=64)
    per_page = per_page_field()

    FILTERS = ("actor", "action", "object", "object_type", "source", "from", "to", "request_id")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" and "to" are Python keywords, so they cannot be class attributes.
        date = {"type": "date"}
        self.fields["from"] = forms.DateField(
            label="From", required=False, widget=forms.DateInput(date, format="%Y-%m-%d")
        )
        self.fields["to"] = forms.DateField(
            label="To",
            required=False,
            widget=forms.DateInput(date, format="%Y-%m-%d"),
            help_text="Includes that whole day.",
        )

    def clean(self):
        data = super().clean()
        for name in ("actor", "action", "object", "request_id"):
            data[name] = (data.get(name) or "").strip()
        start, end = data.get("from"), data.get("to")
        if start and end and start > end:
            self.add_error("to", "The end of the range is before its start.")
        return data

    def value(self, name: str):
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        if name in self.cleaned_data:
            return self.cleaned_data[name]
        return DEFAULT_PAGE_SIZE if name == "per_page" else ""

    def active(self) -> bool:
        return any(self.value(name) for name in self.FILTERS)

    def filter(self, events: QuerySet) -> QuerySet:
        """The events the valid filters select; an invalid filter is not applied."""
        self.is_valid()
        if self.value("actor"):
            events = events.filter(actor_name__iexact=self.value("actor"))
        action = self.value("action").rstrip("*")
        if action:
            events = events.filter(action__startswith=action)
        if self.value("object"):
            events = events.filter(object_repr__icontains=self.value("object"))
        if self.value("object_type"):
            events = events.filter(object_type=self.value("object_type"))
        if self.value("source"):
            events = events.filter(source=self.value("source"))
        if self.value("request_id"):
            events = events.filter(request_id=self.value("request_id"))
        tz = timezone.get_current_timezone()
        if self.value("from"):
            start = timezone.make_aware(datetime.combine(self.value("from"), time.min), tz)
            events = events.filter(time__gte=start)
        if self.value("to"):
            day_after = self.value("to") + timedelta(days=1)
            events = events.filter(
                time__lt=timezone.make_aware(datetime.combine(day_after, time.min), tz)
            )
        return events


# The largest file the import page reads (an export of ~100,000 devices is ~60 MB).
MAX_IMPORT_BYTES = 100 * 1024 * 1024


class ImportForm(forms.Form):
    """The import page: which export, the file, and --approve for devices."""

    kind = forms.ChoiceField(
        label=gettext_lazy("What the file holds"),
        choices=[
            ("mailboxes", gettext_lazy("Mailboxes: Get-CASMailbox | Export-Csv")),
            (
                "devices",
                gettext_lazy("Devices: Get-MobileDevice | Export-Csv (import the mailboxes first)"),
            ),
        ],
        widget=forms.RadioSelect,
        initial="mailboxes",
    )
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy(
            "UTF-8, UTF-16 or Windows-1252; ',' or ';' between fields; a first "
            "'#TYPE' line is skipped. Nothing is written until you start the import."
        ),
    )
    approve = forms.BooleanField(
        label=gettext_lazy("Approve the imported devices"),
        required=False,
        help_text=gettext_lazy(
            "Devices only: put every device but a blocked one on its mailbox's allowed "
            "list, so that today's phones keep syncing when quarantine is switched on."
        ),
    )

    def clean_file(self):
        from .csv_import import CsvError, read_rows

        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise ValidationError(
                gettext(
                    "The file has %(size)s bytes; the page reads at most "
                    "%(max)s (use eas import-mailboxes or import-devices)."
                )
                % {"size": f"{upload.size:,}", "max": f"{MAX_IMPORT_BYTES:,}"}
            )
        try:
            self.rows = read_rows(upload.read())
        except CsvError as exc:
            raise ValidationError(
                gettext("%(file)s cannot be read: %(error)s") % {"file": upload.name, "error": exc}
            ) from None
        return upload
