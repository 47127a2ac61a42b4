"""The profile page where a user creates and revokes their own API tokens."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from devices import actions
from devices.web import actor_for

from .. import tokens
from ..models import ApiToken

TOKENS_URL = "/account/tokens/"


@login_required
def token_list(request):
    """GET: the user's tokens. POST: a new token, shown on this answer only."""
    new_key, error = None, None
    if request.method == "POST":
        try:
            result = actions.create_api_token(
                actor_for(request), request.user, request.POST.get("name")
            )
        except actions.ActionError as e:
            error = str(e)
        else:
            _, new_key = result.obj
    response = render(
        request,
        "api/tokens.html",
        {
            "tokens": ApiToken.objects.filter(user=request.user),
            "new_key": new_key,
            "error": error,
            # Kept after an error, so that it can be corrected rather than typed again.
            "name": request.POST.get("name", "") if error else "",
            "name_max": tokens.MAX_NAME,
        },
        status=400 if error else 200,
    )
    if new_key:
        response["Cache-Control"] = "no-store"  # the key must not stay in a cache
    return response


@require_POST
@login_required
def revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if actions.revoke_api_token(actor_for(request), token).count:
        messages.success(request, f"Revoked the token {token.name} ({token.prefix}…).")
    else:
        messages.info(request, f"The token {token.name} was already revoked.")
    return redirect(TOKENS_URL)
