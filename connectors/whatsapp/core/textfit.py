"""Fitting text into Meta's length limits without losing it or breaking a character.

Two jobs, both pure:

- `split_text` / `split_tail` cut a long text into pieces that each fit a limit, at the most
  natural place available: a paragraph break, then a line break, then any whitespace, and only as a
  last resort between two characters. A cut never falls inside a user-perceived character (a
  surrogate pair, a base character and its combining marks, an emoji ZWJ sequence, a flag), so no
  piece is ever an invalid or mangled string. Only the whitespace at a cut point is dropped.
- `fit_label` / `unique_labels` shorten button and row titles with an ellipsis ("…"), keeping the
  titles of one message distinct, as Meta requires for reply buttons
  (https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-reply-buttons-messages).

Lengths are measured by `text_length`, which is `limits.length`, the project's one counting rule
(UTF-16 code units: a character outside the Basic Multilingual Plane, most emoji, counts twice; why
is in `limits.py`). The sandbox's validation counts with the same function.
"""

import re
import unicodedata
from collections.abc import Iterable

from .limits import length

ELLIPSIS = "…"

_ZWJ = "\u200d"
_WHITESPACE_RUN = re.compile(r"\s+")
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
_PARAGRAPH_SEPARATOR = "\u2029"


text_length = length
"""Length of `text` as `limits.length` counts it (UTF-16 code units)."""


def _width(char: str) -> int:
    return length(char)


def _prefix_end(text: str, limit: int) -> int:
    """The largest index `i` such that `text[:i]` fits `limit`."""
    if 2 * len(text) <= limit:  # a character is at most 2 UTF-16 units: it all fits
        return len(text)
    if text.isascii():
        return min(len(text), limit)
    used = 0
    for index, char in enumerate(text):
        used += _width(char)
        if used > limit:
            return index
    return len(text)


def _suffix_start(text: str, limit: int) -> int:
    """The smallest index `i` such that `text[i:]` fits `limit`."""
    used = 0
    for index in range(len(text) - 1, -1, -1):
        used += _width(text[index])
        if used > limit:
            return index + 1
    return 0


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _extends(char: str) -> bool:
    """Whether `char` attaches to the character before it (so no cut may precede it)."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")  # combining marks, variation selectors
        or char == _ZWJ
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences (subdivision flags)
        or 0xDC00 <= code <= 0xDFFF  # the low half of a surrogate pair
    )


def is_boundary(text: str, index: int) -> bool:
    """Whether cutting `text` at `index` keeps every user-perceived character whole.

    An approximation of Unicode's extended grapheme clusters (UAX #29) that covers what chat text
    contains: CR LF, surrogate pairs, combining marks, ZWJ emoji sequences, skin tones and flags.
    """
    if index <= 0 or index >= len(text):
        return True
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if before == _ZWJ or 0xD800 <= ord(before) <= 0xDBFF:
        return False
    if _extends(after):
        return False
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        run = 0
        position = index - 1
        while position >= 0 and _is_regional_indicator(text[position]):
            run += 1
            position -= 1
        return run % 2 == 0
    return True


def _safe_index(text: str, index: int) -> int:
    """Move `index` back (at most one step) so that it does not split a surrogate pair."""
    if 0 < index < len(text) and 0xD800 <= ord(text[index - 1]) <= 0xDBFF:
        low = ord(text[index])
        if 0xDC00 <= low <= 0xDFFF and index > 1:
            return index - 1
    return index


def _boundary_at_or_before(text: str, index: int, floor: int) -> int:
    """The last cluster boundary in `[floor, index]`, else `index` itself (pair-safe)."""
    for candidate in range(index, floor - 1, -1):
        if is_boundary(text, candidate):
            return candidate
    return _safe_index(text, index)


def _boundary_at_or_after(text: str, index: int, ceiling: int) -> int:
    """The first cluster boundary in `[index, ceiling]`, else `index` itself (pair-safe)."""
    for candidate in range(index, ceiling + 1):
        if is_boundary(text, candidate):
            return candidate
    if 0 < index < len(text) and 0xDC00 <= ord(text[index]) <= 0xDFFF:
        return index + 1
    return index


def _rank(run: str) -> int:
    """How good a whitespace run is as a cut point: 2 paragraph, 1 line break, 0 other."""
    breaks = sum(1 for char in run if char in _LINE_BREAKS) - run.count("\r\n")
    if breaks >= 2 or _PARAGRAPH_SEPARATOR in run:
        return 2
    return 1 if breaks else 0


def _head_cut(text: str, limit: int) -> tuple[int, int]:
    """Where to cut the longest natural head of `text` that fits `limit`.

    Returns `(end, resume)`: the head is `text[:end]`, the rest starts at `resume` (whitespace in
    between is dropped). A paragraph or line break is preferred when it leaves at least half of
    the limit used, so that pieces stay large.
    """
    end = _prefix_end(text, limit)
    best: dict[int, tuple[int, int]] = {}
    for match in _WHITESPACE_RUN.finditer(text, 0, end + 1):
        start, stop = match.span()
        if start == 0:
            continue
        best[_rank(match.group())] = (start, stop)
    half = end // 2
    for rank in (2, 1):
        if rank in best and best[rank][0] >= half:
            return best[rank]
    if best:
        return max(best.values())
    cut = _boundary_at_or_before(text, end, max(1, half))
    return cut, cut


def _tail_cut(text: str, limit: int) -> tuple[int, int]:
    """Where to cut the longest natural tail of `text` that fits `limit`; see `_head_cut`."""
    begin = _suffix_start(text, limit)
    best: dict[int, tuple[int, int]] = {}
    for match in _WHITESPACE_RUN.finditer(text, max(0, begin - 1)):
        start, stop = match.span()
        if stop < begin:
            continue
        best.setdefault(_rank(match.group()), (start, stop))
    size = len(text) - begin
    for rank in (2, 1):
        if rank in best and len(text) - best[rank][1] >= size // 2:
            return best[rank]
    if best:
        return min(best.values(), key=lambda span: span[1])
    ceiling = min(len(text) - 1, begin + size // 2)
    cut = _boundary_at_or_after(text, begin, ceiling)
    return cut, cut


def _check_limit(limit: int) -> None:
    if limit < 2:
        raise ValueError(f"a text limit must be at least 2 characters, not {limit}")


def split_text(text: str, limit: int) -> list[str]:
    """Split `text` into pieces of at most `limit` (by `text_length`), in order.

    Text that fits is returned unchanged as one piece; blank text gives no piece. Otherwise cuts
    go at paragraph breaks, then line breaks, then whitespace, then between characters; the
    whitespace at a cut is dropped and nothing else is lost, reordered or split inside a character.
    Every piece is non-empty.
    """
    _check_limit(limit)
    pieces: list[str] = []
    rest = text
    while rest and not rest.isspace():
        if _prefix_end(rest, limit) == len(rest):  # fits; O(limit), not O(len(rest))
            pieces.append(rest)
            break
        end, resume = _head_cut(rest, limit)
        head = rest[:end].rstrip()
        if head:
            pieces.append(head)
        rest = rest[resume:].lstrip()
    return pieces


def split_tail(text: str, limit: int) -> tuple[str, str]:
    """Split `text` into `(head, tail)`: `tail` is the longest natural ending that fits `limit`.

    Used where the last part of a text goes into a small field (an interactive body, a caption)
    and what comes before it is sent first as text messages. `tail` is empty only for blank text;
    `head` is empty when the whole text fits. Cut points follow `split_text`; when the text does
    not fit, its trailing whitespace is dropped too.
    """
    _check_limit(limit)
    if not text or text.isspace():
        return "", ""
    if text_length(text) <= limit:
        return "", text
    text = text.rstrip()  # trailing whitespace would otherwise make the tail blank
    if text_length(text) <= limit:
        return "", text
    start, stop = _tail_cut(text, limit)
    return text[:start].rstrip(), text[stop:].lstrip()


def fit_label(text: str, limit: int) -> str:
    """Return `text`, or its beginning plus "…", so that `text_length(result) <= limit`.

    The cut falls on a character boundary and drops the whitespace before the ellipsis.
    """
    if limit < 1:
        raise ValueError(f"a label limit must be at least 1 character, not {limit}")
    if text_length(text) <= limit:
        return text
    end = _prefix_end(text, limit - len(ELLIPSIS))
    cut = _boundary_at_or_before(text, end, 1)
    return text[:cut].rstrip() + ELLIPSIS


def _label_key(label: str) -> str:
    return label.strip().casefold()


def unique_labels(labels: Iterable[str], limit: int) -> list[str]:
    """Fit each label to `limit` and keep them distinct, in order.

    A label equal to an earlier one (after fitting, ignoring case and outer whitespace, since Meta
    does not say how it compares titles) gets a counter: "Option… 2". Raises `ValueError` only if
    the counter itself cannot fit, which needs thousands of labels or a tiny limit.
    """
    result: list[str] = []
    seen: set[str] = set()
    for label in labels:
        candidate = fit_label(label, limit)
        counter = 1
        while _label_key(candidate) in seen:
            counter += 1
            tag = f" {counter}"
            room = limit - len(tag)
            if room < 1:
                raise ValueError(f"cannot make {counter} labels unique within {limit} characters")
            base = fit_label(label, room).rstrip()
            candidate = f"{base}{tag}" if base else str(counter)
        seen.add(_label_key(candidate))
        result.append(candidate)
    return result
