"""The ECP's forms: plain forms.Form, validated field by field.

The list filters live here too, so that one definition decides what a query
string may ask for (NetBox's "one filter serves the page and the API").
"""

from datetime import timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q, QuerySet
from django.utils import timezone

from .actions import MAX_DEVICE_ID
from .models import (
    AccessLevel,
    AccessState,
    AdminMailMode,
    Characteristic,
    DeviceClass,
    DeviceIdList,
)

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50

AGES = {
    "1h": ("waiting more than an hour", timedelta(hours=1)),
    "1d": ("waiting more than a day", timedelta(days=1)),
    "7d": ("waiting more than a week", timedelta(days=7)),
    "30d": ("waiting more than 30 days", timedelta(days=30)),
}

# sort key -> (label, order_by)
DEVICE_SORTS = {
    "waiting": ("Waiting longest first", ("state_changed_at", "id")),
    "-waiting": ("Waiting shortest first", ("-state_changed_at", "-id")),
    "first_seen": ("First seen, oldest first", ("first_seen", "id")),
    "-first_seen": ("First seen, newest first", ("-first_seen", "-id")),
    "user": ("User", ("mailbox__alias", "device_key", "id")),
    "type": ("Device type", ("device_type", "device_model", "id")),
    "model": ("Model", ("device_model", "device_type", "id")),
    "state": ("Access state", ("access_state", "mailbox__alias", "id")),
}


def device_families() -> tuple[list[str], list[str]]:
    """The DeviceTypes and DeviceModels ever seen, from DeviceClass, in one query."""
    types, models = set(), set()
    for device_type, device_model in DeviceClass.objects.values_list("device_type", "device_model"):
        if device_type:
            types.add(device_type)
        if device_model:
            models.add(device_model)
    return sorted(types, key=str.casefold), sorted(models, key=str.casefold)


def _choices(values, blank_label: str):
    return [("", blank_label), *((v, v) for v in values)]


class DeviceFilterForm(forms.Form):
    """Search, filters, sorting and page size of the device lists (GET)."""

    q = forms.CharField(label="Search", required=False, max_length=100)
    state = forms.ChoiceField(
        label="Access state",
        required=False,
        choices=[("", "Any state"), *AccessState.choices],
    )
    device_type = forms.CharField(label="Device type", required=False, max_length=64)
    device_model = forms.CharField(label="Model", required=False, max_length=256)
    rule = forms.IntegerField(label="Decided by rule", required=False, min_value=1)
    age = forms.ChoiceField(
        label="Waiting",
        required=False,
        choices=[("", "Any time"), *((k, label) for k, (label, _) in AGES.items())],
    )
    sort = forms.ChoiceField(
        label="Sort by",
        required=False,
        choices=[(k, label) for k, (label, _) in DEVICE_SORTS.items()],
    )
    per_page = forms.TypedChoiceField(
        label="Per page",
        required=False,
        coerce=int,
        empty_value=DEFAULT_PAGE_SIZE,
        choices=[(n, n) for n in PAGE_SIZES],
    )

    def __init__(self, data=None, *, default_sort: str = "-first_seen", **kwargs):
        super().__init__(data, **kwargs)
        self.default_sort = default_sort

    def value(self, name: str):
        """The cleaned value, or its empty value when the field was invalid."""
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        if name in self.cleaned_data:
            return self.cleaned_data[name]
        if name == "per_page":
            return DEFAULT_PAGE_SIZE
        return ""

    def clean_q(self):
        return self.cleaned_data["q"].strip()

    def filter(self, devices: QuerySet, *, now=None) -> QuerySet:
        self.is_valid()  # invalid fields are simply not applied
        q = self.value("q")
        if q:
            devices = devices.filter(
                Q(device_id__icontains=q)
                | Q(mailbox__alias__icontains=q)
                | Q(mailbox__display_name__icontains=q)
                | Q(mailbox__primary_smtp_address__icontains=q)
                | Q(device_type__icontains=q)
                | Q(device_model__icontains=q)
                | Q(device_os__icontains=q)
                | Q(user_agent__icontains=q)
                | Q(friendly_name__icontains=q)
            )
        if self.value("state"):
            devices = devices.filter(access_state=self.value("state"))
        if self.value("device_type"):
            devices = devices.filter(device_type__iexact=self.value("device_type"))
        if self.value("device_model"):
            devices = devices.filter(device_model__iexact=self.value("device_model"))
        if self.value("rule"):
            devices = devices.filter(access_rule=self.value("rule"))
        if self.value("age"):
            now = now or timezone.now()
            devices = devices.filter(state_changed_at__lte=now - AGES[self.value("age")][1])
        return devices.order_by(*DEVICE_SORTS[self.sort_key][1])

    @property
    def sort_key(self) -> str:
        return self.value("sort") or self.default_sort

    def active(self) -> bool:
        names = ("q", "state", "device_type", "device_model", "rule", "age")
        return any(self.value(n) for n in names)


class MailboxFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=100)
    per_page = DeviceFilterForm.base_fields["per_page"]

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
        help_text="Compared case-insensitively; exact unless it holds * (any characters).",
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
            self.add_error("device_model", "This device has not reported a model yet.")
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
        label="Default access level",
        choices=AccessLevel.choices,
        widget=forms.RadioSelect,
        help_text="What happens to a new device that no list or rule decides.",
    )
    admin_mail_recipients = forms.CharField(
        label="Admin mail recipients",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One address per line (or separated by commas). They are told about "
        "every quarantined device.",
    )
    user_mail_insert = forms.CharField(
        label="User mail insert",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Added to the mail users get when a device is quarantined or blocked, "
        "and shown on their My devices page. Plain text.",
    )
    discovery_window_minutes = forms.IntegerField(
        label="Discovery window (minutes)",
        min_value=0,
        max_value=1440,
        help_text="How long a new device may take to report its model and OS before the "
        "default decides.",
    )
    send_user_mail = forms.BooleanField(
        label="Mail users when their device is quarantined or blocked", required=False
    )
    admin_mail_mode = forms.ChoiceField(label="Admin mail", choices=AdminMailMode.choices)
    admin_digest_minutes = forms.IntegerField(
        label="Digest interval (minutes)", min_value=1, max_value=1440
    )
    new_device_alert = forms.BooleanField(
        label="Alert admins about every new partnership, even when allowed", required=False
    )
    allow_health_probes = forms.BooleanField(
        label="Let Exchange health probes through without a partnership", required=False
    )

    FIELDS = (
        "default_access_level",
        "admin_mail_recipients",
        "user_mail_insert",
        "discovery_window_minutes",
        "send_user_mail",
        "admin_mail_mode",
        "admin_digest_minutes",
        "new_device_alert",
        "allow_health_probes",
    )

    @classmethod
    def initial_from(cls, org) -> dict:
        initial = {name: getattr(org, name) for name in cls.FIELDS}
        initial["admin_mail_recipients"] = "\n".join(org.admin_mail_recipients)
        return initial

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
        return {name: self.cleaned_data[name] for name in self.FIELDS}


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
