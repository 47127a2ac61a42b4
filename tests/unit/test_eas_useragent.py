"""The model a User-Agent names (devices.eas.useragent), no Django."""

import pytest

from devices.eas.useragent import model_from_user_agent


@pytest.mark.parametrize(
    ("user_agent", "model"),
    [
        ("Apple-iPhone14C5/2006.1", "iPhone14C5"),
        ("Apple-iPad13C8/2104.61", "iPad13C8"),
        ("Apple-iPhone9C1/1402.100", "iPhone9C1"),
        ("SAMSUNG-SM-G991B/101.110001", "SM-G991B"),
        ("samsung-SM-A536B/101", "SM-A536B"),
        ("Android-SM-A536B/13", "SM-A536B"),
        ("Android-Mail/2023.10.01", ""),
        ("Android/13-EAS-2.0", ""),
        ("Outlook-iOS/2.0", ""),
        ("Apple-iPhone/1402.100", ""),
        ("", ""),
        ("ECP-simulate-device/1.0", ""),
    ],
)
def test_model_from_user_agent(user_agent, model):
    assert model_from_user_agent(user_agent) == model
