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
