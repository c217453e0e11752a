"""The suite's one message-validity oracle: the sandbox's validation (`sandbox/validation.py`).

Every test that checks a body the builders or the renderer made asks `assert_valid`, so a body the
sandbox, and so the Cloud API as far as Meta documents it, would refuse fails the test that made it,
with the error Meta would answer. Lengths are counted by `limits.length` (UTF-16 code units), the
project's one counting rule, which the renderer applies too (why that rule: `core/limits.py`).

What is a property of our renderer rather than a rule of Meta's (titles that differ by more than
case, no caption on audio) is asserted by the renderer's own tests, not here.
"""

from collections.abc import Mapping
from typing import Any

from sandbox.validation import message_problem


def assert_valid(*bodies: Mapping[str, Any]) -> None:
    """Fail, naming each body and Meta's error for it, unless the Cloud API would take them all."""
    found = {index: message_problem(body) for index, body in enumerate(bodies)}
    refused = {index: problem for index, problem in found.items() if problem is not None}
    assert not refused, f"bodies the Cloud API would refuse: {refused} in {list(bodies)!r}"
