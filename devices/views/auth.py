"""Sign in, change password. `next` is followed only when it points into this site."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.debug import sensitive_post_parameters


class SignInForm(AuthenticationForm):
    """Django's sign-in form; a directory that cannot answer is said so, not "wrong password"."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "directory_unavailable": (
            "The directory is unavailable, so your password cannot be checked right now."
            " Try again in a few minutes; if it persists, tell your administrator."
        ),
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        field = self.fields["username"]
        if "devices.directory.backend.DirectoryBackend" in settings.AUTHENTICATION_BACKENDS:
            field.help_text = (
                "Your directory account, as you like: the alias (jdoe), the mail address"
                " (jdoe@example.org) or DOMAIN\\jdoe. The password is your directory password."
            )
        else:
            field.help_text = (
                "Your sign-in name, which for your own mailbox is its alias (jdoe), not the"
                " mail address. Use the password your administrator gave you for this panel."
            )

    def clean(self):
        try:
            return super().clean()
        except ValidationError as error:
            if getattr(self.request, "ecp_directory_unavailable", False):
                raise ValidationError(
                    self.error_messages["directory_unavailable"], code="directory_unavailable"
                ) from error
            raise


# Django's LoginView already refuses a `next` that leaves this host.
login = auth_views.LoginView.as_view(
    template_name="registration/login.html",
    redirect_authenticated_user=True,
    authentication_form=SignInForm,
)
logout = auth_views.LogoutView.as_view()


@sensitive_post_parameters()
@login_required
def password_change(request):
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)
        messages.success(request, gettext("Your password was changed."))
        return redirect("/")
    return render(request, "registration/password_change.html", {"form": form})
