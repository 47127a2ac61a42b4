"""The panel user's own settings: language and time zone (empty: the browser's)."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..languages import available_time_zones, valid_time_zone
from ..models import UserPreferences
from ..preferences import browser_time_zone, preferences_of, remember

PREFERENCES_URL = "/account/preferences/"


class PreferencesForm(forms.Form):
    language = forms.ChoiceField(label=gettext_lazy("Language"), required=False)
    time_zone = forms.CharField(
        label=gettext_lazy("Time zone"),
        required=False,
        max_length=64,
        help_text=gettext_lazy(
            "An IANA name such as Europe/Berlin, America/New_York or UTC. Empty: your browser's."
        ),
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [
            ("", _("Your browser's language")),
            *settings.LANGUAGES,
        ]

    def clean_time_zone(self):
        value = self.cleaned_data["time_zone"].strip()
        if value and not valid_time_zone(value):
            raise forms.ValidationError(_("Not a time zone: %(zone)s") % {"zone": value})
        return value


@login_required
def preferences(request):
    form = PreferencesForm(request.POST or None, initial=preferences_of(request))
    if request.method == "POST" and form.is_valid():
        UserPreferences.objects.update_or_create(user=request.user, defaults=form.cleaned_data)
        remember(request, form.cleaned_data)
        language = form.cleaned_data["language"] or translation.get_language_from_request(request)
        translation.activate(language)  # the message below in the language just chosen
        messages.success(request, _("Your preferences were saved."))
        return redirect(PREFERENCES_URL)
    return render(
        request,
        "account/preferences.html",
        {
            "form": form,
            "zones": sorted(available_time_zones()),
            "browser_zone": browser_time_zone(request),
            "current_zone": timezone.get_current_timezone_name(),
            "now": timezone.now(),
        },
    )
