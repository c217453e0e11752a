"""Graph API errors become typed exceptions chosen by Meta's code, not by the HTTP status."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.whatsapp.core.errors import (
    AuthenticationError,
    GraphAPIError,
    GraphTransportError,
    InvalidRequestError,
    MarketingOptOutError,
    MediaTooLargeError,
    PairRateLimitError,
    PermissionDeniedError,
    PolicyError,
    ReEngagementError,
    ServiceUnavailableError,
    TemplateError,
    ThrottlingError,
    UndeliverableError,
    UnexpectedResponseError,
    UnknownAPIError,
    WhatsAppError,
    error_class_for,
    graph_error_from_response,
)
from tests.conftest import ACCESS_TOKEN


def envelope(code: object, **extra: object) -> dict[str, object]:
    return {
        "error": {"message": f"(#{code}) title", "type": "OAuthException", "code": code, **extra}
    }


# (code, HTTP status Meta sends it with, expected class, retryable)
CODE_TABLE = [
    (0, 401, AuthenticationError, False),
    (1, 400, UnknownAPIError, True),
    (2, 503, ServiceUnavailableError, True),
    (3, 500, PermissionDeniedError, False),
    (4, 400, ThrottlingError, True),
    (10, 403, PermissionDeniedError, False),
    (33, 400, InvalidRequestError, False),
    (100, 400, InvalidRequestError, False),
    (190, 401, AuthenticationError, False),
    (200, 403, PermissionDeniedError, False),
    (250, 403, PermissionDeniedError, False),
    (299, 403, PermissionDeniedError, False),
    (368, 403, PolicyError, False),
    (80007, 400, ThrottlingError, True),
    (130429, 400, ThrottlingError, True),
    (130472, 400, PolicyError, False),
    (130497, 403, PolicyError, False),
    (131000, 500, ServiceUnavailableError, True),
    (131005, 403, PermissionDeniedError, False),
    (131008, 400, InvalidRequestError, False),
    (131009, 400, InvalidRequestError, False),
    (131016, 500, ServiceUnavailableError, True),
    (131021, 400, InvalidRequestError, False),
    (131026, 400, UndeliverableError, False),
    (131031, 403, PolicyError, False),
    (131047, 400, ReEngagementError, False),
    (131048, 400, PolicyError, False),
    (131049, 400, PolicyError, False),
    (131050, 400, MarketingOptOutError, False),
    (131051, 400, InvalidRequestError, False),
    (131053, 400, InvalidRequestError, False),
    (131056, 400, PairRateLimitError, True),
    (131057, 500, ServiceUnavailableError, True),
    (132000, 400, TemplateError, False),
    (132001, 404, TemplateError, False),
    (132015, 400, TemplateError, False),
    (132069, 400, TemplateError, False),
    (133004, 503, ServiceUnavailableError, True),
    (135000, 400, InvalidRequestError, False),
    # Documented but without a class of their own: the base class, never retried, even on a 5xx.
    (131045, 500, GraphAPIError, False),
    (133000, 500, GraphAPIError, False),
    (133010, 400, GraphAPIError, False),
]


@pytest.mark.parametrize(("code", "status", "cls", "retryable"), CODE_TABLE)
def test_each_documented_code_maps_to_its_class(
    code: int, status: int, cls: type[GraphAPIError], retryable: bool
) -> None:
    error = graph_error_from_response(status, envelope(code))

    assert type(error) is cls
    assert error.code == code
    assert error.http_status == status
    assert error.retryable is retryable
    assert isinstance(error, WhatsAppError)


def test_throttling_is_recognised_by_code_although_meta_sends_http_400() -> None:
    assert isinstance(graph_error_from_response(400, envelope(130429)), ThrottlingError)
    # And a 5xx carrying a permanent code is not retried.
    assert not graph_error_from_response(500, envelope(100)).retryable


def test_pair_rate_limit_is_a_throttling_error() -> None:
    error = graph_error_from_response(400, envelope(131056))
    assert isinstance(error, ThrottlingError)
    assert error.retryable


def test_code_1_is_retried_once_at_most() -> None:
    assert UnknownAPIError.max_retries == 1
    assert ThrottlingError.max_retries is None


def test_template_range_edges() -> None:
    assert error_class_for(131999, 400) is GraphAPIError
    assert error_class_for(132000, 400) is TemplateError
    assert error_class_for(132069, 400) is TemplateError
    assert error_class_for(132070, 400) is GraphAPIError


@pytest.mark.parametrize(
    ("status", "cls"),
    [(500, ServiceUnavailableError), (502, ServiceUnavailableError), (503, ServiceUnavailableError),
     (429, ThrottlingError), (400, GraphAPIError), (404, GraphAPIError), (401, GraphAPIError)],
)  # fmt: skip
def test_without_a_known_code_the_http_status_decides(
    status: int, cls: type[GraphAPIError]
) -> None:
    assert type(graph_error_from_response(status, envelope(987654))) is cls
    assert type(graph_error_from_response(status, {"error": {"message": "no code"}})) is cls
    assert type(graph_error_from_response(status, "<html>Bad Gateway</html>")) is cls


def test_all_fields_are_read_from_meta_envelope() -> None:
    payload = {
        "error": {
            "message": "(#131047) Re-engagement message",
            "type": "OAuthException",
            "code": 131047,
            "error_subcode": 2494010,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": "Message failed to send because more than 24 hours have passed",
            },
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
        }
    }

    error = graph_error_from_response(400, payload, retry_after=None)

    assert isinstance(error, ReEngagementError)
    assert error.error_subcode == 2494010
    assert error.message == "(#131047) Re-engagement message"
    assert error.type == "OAuthException"
    assert error.details == "Message failed to send because more than 24 hours have passed"
    assert error.fbtrace_id == "Az8or2yhqkZfEZ-_4Qn_Bam"
    assert error.raw == payload["error"]
    assert error.retry_after is None


def test_str_shows_code_subcode_message_details_and_trace() -> None:
    payload = envelope(
        131026,
        error_subcode=42,
        error_data={"details": "Recipient not on WhatsApp"},
        fbtrace_id="TRACE1",
    )

    text = str(graph_error_from_response(400, payload))

    for part in ("131026", "subcode 42", "(#131026) title", "Recipient not on WhatsApp", "TRACE1"):
        assert part in text
    assert "HTTP 400" in text
    assert "131026" in repr(graph_error_from_response(400, payload))


def test_str_and_repr_never_show_the_token() -> None:
    error = graph_error_from_response(401, envelope(190, fbtrace_id="T"))
    for text in (str(error), repr(error), str(error.args)):
        assert ACCESS_TOKEN not in text


def test_code_given_as_a_string_is_understood() -> None:
    error = graph_error_from_response(400, envelope("130429", error_subcode="7"))
    assert isinstance(error, ThrottlingError)
    assert error.code == 130429
    assert error.error_subcode == 7


@pytest.mark.parametrize(
    "payload",
    [None, "", "Service Unavailable", b"\xff\xfe not utf-8", [1, 2], 42, {"error": "a string"},
     {"error": None}, {"unexpected": True}, {"error": {"code": True}},
     {"error": {"code": None, "error_data": "x"}}, {"error": {"code": [1], "message": {"a": 1}}}],
)  # fmt: skip
def test_odd_bodies_never_raise_while_building_the_error(payload: object) -> None:
    error = graph_error_from_response(502, payload)
    assert isinstance(error, ServiceUnavailableError)
    assert error.http_status == 502
    assert isinstance(str(error), str)


def test_a_non_json_body_becomes_a_short_message() -> None:
    page = "<html><body>" + "Bad Gateway " * 200 + "</body></html>"
    error = graph_error_from_response(502, page)
    assert error.code is None
    assert error.message.startswith("<html><body>Bad Gateway")
    assert len(error.message) <= 300


def test_bytes_body_is_decoded() -> None:
    error = graph_error_from_response(503, b"upstream connect error")
    assert error.message == "upstream connect error"


def test_a_flattened_error_object_is_accepted() -> None:
    error = graph_error_from_response(400, {"code": 131047, "message": "Re-engagement"})
    assert isinstance(error, ReEngagementError)


def test_retry_after_is_carried() -> None:
    assert graph_error_from_response(400, envelope(4), retry_after=3.0).retry_after == 3.0


@given(status=st.integers(100, 599), payload=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["error", "code", "message", "error_data", "details",
                                       "error_subcode", "fbtrace_id", "type"]), children,
                      max_size=5),
    max_leaves=12,
))  # fmt: skip
def test_any_json_shape_gives_a_graph_api_error(status: int, payload: object) -> None:
    error = graph_error_from_response(status, payload)
    assert isinstance(error, GraphAPIError)
    assert error.http_status == status
    str(error)
    repr(error)


def test_other_errors_and_their_retryability() -> None:
    transport = GraphTransportError("timed out", method="POST", path="/v23.0/1/messages")
    assert transport.retryable
    assert str(transport) == "POST /v23.0/1/messages: timed out"

    too_large = MediaTooLargeError(max_bytes=10, size=11)
    assert not too_large.retryable
    assert "10 bytes" in str(too_large)

    assert not UnexpectedResponseError("no id").retryable
