"""Graph API errors, in the exact envelope Meta answers with.

https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes: every error is
`{"error": {"message", "type", "code", "error_data": {"messaging_product", "details"},
"fbtrace_id"}}`, and the throttling codes come back with HTTP 400, not 429.
"""

import secrets
import string
from typing import Any

_TRACE_ALPHABET = string.ascii_letters + string.digits + "_-"


def fbtrace_id() -> str:
    """A random id shaped like Meta's `fbtrace_id` (for example "AyUmjG0DS0cEXZZwn8esb2q")."""
    return "A" + "".join(secrets.choice(_TRACE_ALPHABET) for _ in range(22))


class GraphError(Exception):
    """An error the sandbox answers instead of a success, as Meta would."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        details: str | None = None,
        status: int = 400,
        error_subcode: int | None = None,
        error_type: str = "OAuthException",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message if details is None else f"{message}: {details}")
        self.code = code
        self.message = message
        self.details = details
        self.status = status
        self.error_subcode = error_subcode
        self.error_type = error_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
        }
        if self.details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        if self.error_subcode is not None:
            error["error_subcode"] = self.error_subcode
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}


def invalid_parameter(details: str) -> GraphError:
    """Code 100: a misspelled or unsupported parameter, or a value outside its length limit."""
    return GraphError(100, "(#100) Invalid parameter", details=details)


def missing_parameter(path: str) -> GraphError:
    """Code 100, the way Meta words a missing required parameter."""
    return GraphError(
        100, f"(#100) The parameter {path} is required.", details=f"{path} is required"
    )


def invalid_value(details: str) -> GraphError:
    """Code 131009: a parameter value that is not valid (counts, duplicates, unknown targets)."""
    return GraphError(131009, "(#131009) Parameter value is not valid", details=details)


def invalid_token() -> GraphError:
    return GraphError(190, "Invalid OAuth access token - Cannot parse access token", status=401)


def missing_token() -> GraphError:
    return GraphError(104, "An access token is required to request this resource.", status=400)


def unknown_object(object_id: str, method: str) -> GraphError:
    """What the Graph API answers for an id that does not exist (or is not ours)."""
    return GraphError(
        100,
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read the "
        "Graph API documentation at https://developers.facebook.com/docs/graph-api",
        error_subcode=33,
        error_type="GraphMethodException",
    )


# Titles Meta gives the asynchronous errors it reports in `statuses[].errors[]`.
ERROR_TITLES = {
    2: "Service temporarily unavailable",
    4: "Too many API calls",
    80007: "Rate limit issues",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131016: "Service unavailable",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131053: "Media upload error",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
}
