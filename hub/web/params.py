"""Reading numbers from query strings without surprises.

``str.isdigit`` is true for "²" and "١٢", and ``int()`` of a long digit
string overflows SQLite's 64-bit integers: either becomes a 500. Every
numeric query parameter goes through ``number``."""

MAX_DIGITS = 9


def number(text: str | None) -> int | None:
    """The value of 1..9 ASCII digits, else None."""
    if text and len(text) <= MAX_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return None
