"""Strict readers for settings that come from environment variables.

A typo in a deployment must fail loudly at start-up, not silently turn a
feature off: `envbool` accepts only true or false (any case), as the README
says; 1/0, yes/no, on/off are refused with the variable's name.
"""

import os
import secrets
from pathlib import Path


class ConfigError(Exception):
    pass


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envlist(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def envnetworks(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of addresses and CIDR networks; "none" for an empty list."""
    import ipaddress

    raw = os.environ.get(name)
    if raw is not None and raw.strip().lower() == "none":
        return []
    items = envlist(name, default)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not an address or a network") from None
    return items


WEBHOOK_FLAVORS = ("slack", "teams")
# Hosts of Microsoft Teams' incoming webhooks and workflows: these get an Adaptive Card.
_TEAMS_HOSTS = ("webhook.office.com", "logic.azure.com", "powerplatform.com", "powerautomate.com")
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def split_webhook(entry: str) -> tuple[str, str]:
    """(flavor, url) of one ECP_WEBHOOK_URLS entry: `teams:` or `slack:` before the URL
    says which, else the host does (Teams' hosts get Teams, anything else Slack's format)."""
    from urllib.parse import urlsplit

    flavor, sep, rest = entry.partition(":")
    if sep and flavor.lower() in WEBHOOK_FLAVORS and not rest.startswith("//"):
        return flavor.lower(), rest
    host = (urlsplit(entry).hostname or "").lower()
    teams = any(host == h or host.endswith("." + h) for h in _TEAMS_HOSTS)
    return ("teams" if teams else "slack"), entry


def webhook_problem(entry: str) -> str:
    """Why an ECP_WEBHOOK_URLS entry is unusable ('' when it is fine)."""
    from urllib.parse import urlsplit

    _flavor, url = split_webhook(entry)
    if len(url) > 2000 or not url.isprintable() or " " in url:
        return "is not a URL (at most 2,000 printable characters, no spaces)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a URL"
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        return "is not an https:// URL"
    if parts.username or parts.password:
        return "carries a user name or password: put the secret in the path, as Slack and Teams do"
    if parts.scheme == "http" and not (host in _LOOPBACK_HOSTS or host.startswith("127.")):
        return "is plain http: use https:// (http:// only for a relay on a loopback address)"
    return ""


def envwebhooks(name: str) -> list[str]:
    """Comma-separated Slack or Teams incoming-webhook URLs, each checked at start-up."""
    items = envlist(name, [])
    for item in items:
        problem = webhook_problem(item)
        if problem:
            shown = item if len(item) <= 80 else item[:77] + "..."
            raise ConfigError(f"{name}: {shown!r} {problem}")
    if len(set(items)) != len(items):
        raise ConfigError(f"{name} names the same URL twice")
    return items


def database_from_url(url: str) -> dict:
    """Turn postgres://user:pass@host:port/name into a DATABASES entry."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise ConfigError(f"DATABASE_URL must be a postgres:// URL, not {parts.scheme!r}")
    name = parts.path.lstrip("/")
    if not name:
        raise ConfigError("DATABASE_URL names no database")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(name),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def secret_key(var_dir: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in var/."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    path.write_text(key)
    path.chmod(0o600)
    return key
