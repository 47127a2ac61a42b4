"""The single exception type of the EAS request parsers.

Every malformed input (query string or WBXML body) surfaces as
``EASParseError`` with a short human-readable message, so the gate can map
it to a 400 without ever leaking a 500.
"""


class EASParseError(ValueError):
    """The request is not valid Exchange ActiveSync."""
