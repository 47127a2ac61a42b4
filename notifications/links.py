"""Absolute links for mails, built on ECP_BASE_URL (mails have no request)."""

from django.conf import settings


def absolute_url(path: str) -> str:
    if path.startswith(("http://", "https://")):
        return path
    return settings.ECP_BASE_URL.rstrip("/") + "/" + path.lstrip("/")
