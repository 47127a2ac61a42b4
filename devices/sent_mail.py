"""The Sent mail page: every notification, its delivery state, and Resend."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from notifications.models import HIGH_PRIORITY, Channel, Kind, Notification, Status

from . import actions
from .audit import Actor
from .models import AuditSource
from .web import client_ip, request_id


def _actor(request) -> Actor:
    return Actor(
        user=request.user,
        source=AuditSource.UI,
        ip=client_ip(request),
        request_id=request_id(request),
    )


@login_required
@permission_required("notifications.view_notification", raise_exception=True)
def sent_mail(request):
    rows = Notification.objects.defer("body_text", "body_html", "context")
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")
    if status in Status.values:
        rows = rows.filter(status=status)
    if kind in Kind.values:
        rows = rows.filter(kind=kind)
    channel = request.GET.get("channel", "")
    if channel in Channel.values:
        rows = rows.filter(channel=channel)
    query = request.GET.get("q", "").strip()
    if query:
        rows = rows.filter(recipient__icontains=query)
    page = Paginator(rows.order_by("-created_at", "-id"), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "notifications/sent_mail.html",
        {
            "page": page,
            "status": status,
            "kind": kind,
            "q": query,
            "statuses": Status.choices,
            "kinds": Kind.choices,
            "channel": channel,
            "channels": Channel.choices,
            "high_priority": HIGH_PRIORITY,
            "can_resend": request.user.has_perm("notifications.change_notification"),
        },
    )


@require_POST
@login_required
@permission_required("notifications.change_notification", raise_exception=True)
def resend(request, pk: int):
    notification = get_object_or_404(Notification, pk=pk)
    try:
        result = actions.resend_notification(_actor(request), notification)
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, result.event.message)
    return redirect("sent-mail")
