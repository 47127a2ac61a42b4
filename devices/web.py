"""Request helpers for the ECP views: who is acting, and where to go next."""

import ipaddress
import uuid

from django.conf import settings
from django.contrib import messages
from django.utils.http import url_has_allowed_host_and_scheme

from . import hostile
from .audit import Actor
from .forms import per_page_problem
from .models import AuditSource


def client_ip(request) -> str | None:
    """The browser's address; X-Real-IP is believed only from a trusted proxy."""
    remote = request.META.get("REMOTE_ADDR", "")
    if remote in settings.ECP_TRUSTED_PROXIES:
        forwarded = request.META.get("HTTP_X_REAL_IP", "").strip()
        if forwarded:
            remote = forwarded
    try:
        return str(ipaddress.ip_address(remote))
    except ValueError:
        return None


def request_id(request) -> str:
    """One id per request, so that its audit events can be tied together."""
    rid = getattr(request, "_ecp_request_id", None)
    if rid is None:
        # A NUL or a control here would reach the audit row (and PostgreSQL).
        rid = hostile.request_id(request.META.get("HTTP_X_REQUEST_ID", "")) or uuid.uuid4().hex
        request._ecp_request_id = rid
    return rid


def actor_for(request, *, source: str = AuditSource.UI) -> Actor:
    """The signed-in user acting through the control panel (or its self-service pages)."""
    return Actor(
        user=request.user,
        source=source,
        ip=client_ip(request),
        request_id=request_id(request),
    )


def safe_next(request, default: str) -> str:
    """The `next` the form or query carries when it points into this site, else default."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def warn_about_page_size(request) -> None:
    """A `per_page` that is no page size is said so, not silently ignored."""
    problem = per_page_problem(request.GET)
    if problem:
        messages.warning(request, problem)
