"""The ActiveSync gate: authenticate the device's login, record the partnership, decide."""
