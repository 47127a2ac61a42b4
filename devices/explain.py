"""Which rule or default would decide a device like this one, and why: the "test a
device" box on the rules page and `eas test-device`. Reads only.

The engine decides (devices.access.decide, fed as on the device's first request,
for a mailbox with ActiveSync on and the device on neither of its lists); this
module puts its reasons in words, characteristic by characteristic, version
comparisons included ("DeviceOS 'iOS 16.7.10 20H350' is below 17: rule 'iOS < 17'").
"""

from django.utils import timezone

from . import access
from .evaluation import load_rules, org_facts
from .models import Characteristic, DeviceAccessRule, OrgSettings
from .views.wording import rule_words

FIELD = {
    Characteristic.USER_AGENT: "user_agent",
    Characteristic.DEVICE_OS: "device_os",
    Characteristic.DEVICE_MODEL: "device_model",
    Characteristic.DEVICE_TYPE: "device_type",
}


def explain_device(data: dict) -> dict:
    """data: device_type, device_model, device_os, user_agent (strings), info_received.

    Returns the decision, the deciding rule (a DeviceAccessRule, or None), `why` in
    one sentence, and `steps`: per characteristic in the engine's order, a text and
    whether a rule on it matches.
    """
    rules = load_rules()
    org = OrgSettings.objects.filter(pk=1).first() or OrgSettings()  # load() would write
    device = access.DeviceFacts(
        device_id="test",
        device_type=data.get("device_type", ""),
        device_model=data.get("device_model", ""),
        device_os=data.get("device_os", ""),
        user_agent=data.get("user_agent", ""),
        info_received=data.get("info_received", True),
    )
    decision = access.decide(access.MailboxFacts(), device, rules, org_facts(org), timezone.now())
    steps, decided = [], False
    by_pk = {r.pk: r for r in DeviceAccessRule.objects.all()}
    for characteristic in access.CHARACTERISTIC_ORDER:
        value = getattr(device, FIELD[characteristic])
        match = rules.match(access.DeviceFacts(**{FIELD[characteristic]: value})) if value else None
        if not value:
            text = "not given, so no rule on it can match"
        elif match is None:
            verdicts = access.version_verdicts(rules, characteristic, value)
            text = "; ".join(verdicts) if verdicts else f'no rule matches "{value}"'
        else:
            rule = by_pk.get(match.id)
            text = access.describe_match(match, value)
            if rule is not None:
                text += f" ({rule.access_level})"
            if decided:
                text += ", but an earlier characteristic already decided"
        steps.append({"characteristic": characteristic, "text": text, "match": match is not None})
        decided = decided or match is not None
    rule = by_pk.get(decision.rule_id) if decision.rule_id else None
    if rule is not None:
        value = getattr(device, FIELD[rule.characteristic])
        why = (
            f"{access.describe_match(decision.rule, value)}, so {rule_words(rule)} decides: "
            "the first characteristic with a matching rule wins."
        )
    elif decision.state == "DeviceDiscovery":
        why = (
            "No rule matches yet and the device has not reported its model and OS: it waits "
            f"in device discovery for up to {org.discovery_window_minutes} minutes."
        )
    else:
        why = (
            "No rule matches, so the organisation's default access level "
            f"({org.default_access_level}) decides."
        )
    return {"decision": decision, "rule": rule, "why": why, "steps": steps}
