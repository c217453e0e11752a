"""The project's one counting rule for Meta's "characters" (`limits.length`), pinned down.

The renderer and the sandbox's validation (the suite's oracle) both count with `limits.length`; this
file fixes what it counts, UTF-16 code units, so neither can drift to code points alone.
"""

from hypothesis import given
from hypothesis import strategies as st

from connectors.whatsapp.core import limits, textfit
from sandbox import validation


@given(st.text())
def test_length_counts_utf16_code_units(text: str) -> None:
    assert limits.length(text) == len(text.encode("utf-16-le", "surrogatepass")) // 2


def test_length_of_what_chat_text_contains() -> None:
    assert limits.length("") == 0
    assert limits.length("Olá") == 3
    assert limits.length("e\u0301") == 2  # a combining mark is a code unit of its own
    assert limits.length("😀") == 2  # outside the Basic Multilingual Plane: a surrogate pair
    assert limits.length("👨\u200d👩\u200d👧") == 8
    assert limits.length("🇧🇷") == 4


def test_the_renderer_and_the_sandbox_count_the_same_way() -> None:
    assert textfit.text_length is limits.length
    fits = {"messaging_product": "whatsapp", "to": "5511987654321", "type": "text"}
    emoji = "😀" * (limits.TEXT_BODY // 2)
    assert validation.message_problem({**fits, "text": {"body": emoji}}) is None
    too_long = validation.message_problem({**fits, "text": {"body": emoji + "x"}})
    assert too_long is not None and f"({limits.TEXT_BODY + 1} given)" in too_long
