"""`X-Hub-Signature-256`: the HMAC-SHA256 that Meta puts on every webhook POST.

Meta signs the raw body bytes with the app secret and sends `sha256=<hex digest>`
(https://developers.facebook.com/docs/graph-api/webhooks/getting-started/#validate-payloads).
The check must run on the bytes as received, before any JSON decoding: Meta escapes non-ASCII
characters as `\\uXXXX`, so a decoded and re-encoded body no longer matches.
"""

import enum
import hashlib
import hmac

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


class SignatureCheck(enum.Enum):
    """The outcome of checking a webhook's signature."""

    VALID = "valid"
    MISSING = "missing"
    """No header, or an empty one: answered with 401."""
    INVALID = "invalid"
    """A header that does not match: answered with 403."""


def sign(body: bytes, app_secret: str) -> str:
    """Return the `X-Hub-Signature-256` header value Meta would send for `body`."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def check_signature(body: bytes, header: str | None, app_secret: str) -> SignatureCheck:
    """Check `header` against the HMAC of `body`, in constant time.

    The algorithm is fixed to SHA-256: it is never taken from the header.
    """
    if not header or not header.strip():
        return SignatureCheck.MISSING
    expected = sign(body, app_secret)
    received = header.strip()
    if received[: len(_PREFIX)].lower() == _PREFIX:
        received = _PREFIX + received[len(_PREFIX) :].lower()
    if hmac.compare_digest(expected.encode("ascii"), received.encode("utf-8", "replace")):
        return SignatureCheck.VALID
    return SignatureCheck.INVALID
