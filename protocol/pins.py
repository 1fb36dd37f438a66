"""Staff PINs as salted scrypt hashes: the hub makes them, the node verifies
them offline against the roster. Format: ``scrypt$n$r$p$salt_hex$hash_hex``."""

import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1


def hash_pin(pin: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, stored: str) -> bool:
    """True when ``pin`` matches ``stored``; False for any malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(digest)
        actual = hashlib.scrypt(
            pin.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected), maxmem=64 * 1024 * 1024,
        )
    except (AttributeError, ValueError):
        return False
    return hmac.compare_digest(actual, expected)


def device_id(site_secret: bytes, mac: str) -> str:
    """The only form in which a phone's MAC leaves the node (DESIGN.md)."""
    return hmac.new(site_secret, mac.lower().encode(), hashlib.sha256).hexdigest()[:16]
