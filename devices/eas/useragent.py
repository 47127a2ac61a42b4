"""The device model a User-Agent names, for devices that have not reported one.

A phone set up before ECP may never provision again, so it never sends
Settings:DeviceInformation; its User-Agent often names the model already:

    Apple-iPhone14C5/2006.1        -> iPhone14C5   (iOS Mail: Apple-<model>/<build>)
    SAMSUNG-SM-G991B/101.110001    -> SM-G991B     (Samsung Email)
    Android-SM-A536B/13            -> SM-A536B     (AOSP Exchange clients that name it)

Anything else (Android-Mail/..., Outlook-iOS/..., a bare app name) names no
model and gives "". Pure: no Django.
"""

import re

MAX_MODEL = 64

_PATTERNS = (
    re.compile(r"Apple-((?:iPhone|iPad|iPod|Watch)\d+C\d+)(?:/|$)"),
    re.compile(r"SAMSUNG-([A-Z]{2,3}-[A-Z0-9]+)(?:/|$)", re.IGNORECASE),
    re.compile(r"Android-((?:[A-Z]{2,3}-)?[A-Z0-9]*\d[A-Z0-9]*)(?:/|$)", re.IGNORECASE),
)


def model_from_user_agent(user_agent: str) -> str:
    """The model in a User-Agent such as ``Apple-iPhone14C5/2006.1``, or ""."""
    for pattern in _PATTERNS:
        found = pattern.match(user_agent.strip())
        if found:
            return found.group(1)[:MAX_MODEL]
    return ""
