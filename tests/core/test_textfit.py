"""Splitting long text and fitting labels: nothing lost, nothing split inside a character."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.whatsapp.core.limits import length
from connectors.whatsapp.core.textfit import (
    ELLIPSIS,
    fit_label,
    is_boundary,
    split_tail,
    split_text,
    text_length,
    unique_labels,
)

FAMILY = "👨\u200d👩\u200d👧"  # man ZWJ woman ZWJ girl: one character on screen
BRAZIL, PORTUGAL = "🇧🇷", "🇵🇹"
PAIR = "\ud83d\ude00"  # a surrogate pair kept as two code points, as from surrogatepass JSON


def assert_only_whitespace_lost(original: str, pieces: list[str]) -> None:
    """Pieces appear in order in `original`, separated only by whitespace."""
    position = 0
    for piece in pieces:
        found = original.find(piece, position)
        assert found >= 0, f"{piece!r} not found in order"
        assert original[position:found].strip() == "", f"lost {original[position:found]!r}"
        position = found + len(piece)
    assert original[position:].strip() == "", f"lost the end {original[position:]!r}"


# text_length


def test_text_length_counts_astral_characters_twice() -> None:
    assert text_length("abc") == 3
    assert text_length("😀") == 2
    assert text_length("e\u0301") == 2
    assert text_length(FAMILY) == length(FAMILY) == 8


# split_text


def test_text_that_fits_is_returned_unchanged() -> None:
    assert split_text("  hello  ", 4096) == ["  hello  "]


@pytest.mark.parametrize("blank", ["", "   ", "\n\n\t"])
def test_blank_text_gives_no_piece(blank: str) -> None:
    assert split_text(blank, 10) == []


def test_paragraph_break_is_preferred() -> None:
    text = "first line\nsecond line\n\nnext paragraph"
    assert split_text(text, 30) == ["first line\nsecond line", "next paragraph"]


def test_line_break_is_preferred_over_spaces() -> None:
    text = "aaaa bbbb cccc\ndddd eeee ffff"
    assert split_text(text, 20) == ["aaaa bbbb cccc", "dddd eeee ffff"]


def test_an_early_paragraph_break_does_not_make_a_tiny_piece() -> None:
    text = "Hi!\n\n" + "word " * 10
    pieces = split_text(text, 40)
    assert pieces[0].startswith("Hi!\n\nword")
    assert_only_whitespace_lost(text, pieces)


def test_whitespace_is_used_when_there_is_no_line_break() -> None:
    assert split_text("one two three four", 9) == ["one two", "three", "four"]


def test_a_word_longer_than_the_limit_is_cut_between_characters() -> None:
    assert split_text("a" * 10, 4) == ["aaaa", "aaaa", "aa"]


def test_every_piece_fits_and_nothing_but_whitespace_is_lost() -> None:
    text = ("Lorem ipsum dolor sit amet. " * 400 + "\n\n") * 3
    pieces = split_text(text, 4096)
    assert len(pieces) > 1
    assert all(0 < text_length(piece) <= 4096 for piece in pieces)
    assert_only_whitespace_lost(text, pieces)


def test_emoji_are_never_split_and_count_twice() -> None:
    assert split_text("😀" * 5, 3) == ["😀"] * 5


def test_surrogate_pairs_given_as_code_points_are_never_split() -> None:
    pieces = split_text(PAIR * 5, 3)
    assert "".join(pieces) == PAIR * 5
    for piece in pieces:
        assert not 0xDC00 <= ord(piece[0]) <= 0xDFFF
        assert not 0xD800 <= ord(piece[-1]) <= 0xDBFF


def test_combining_marks_stay_with_their_letter() -> None:
    text = "e\u0301" * 10
    pieces = split_text(text, 5)
    assert "".join(pieces) == text
    assert all(unicodedata.combining(piece[0]) == 0 for piece in pieces)
    assert all(text_length(piece) <= 5 for piece in pieces)


def test_zwj_sequences_and_flags_stay_whole() -> None:
    assert split_text(FAMILY * 3, 10) == [FAMILY] * 3
    assert split_text(BRAZIL + PORTUGAL + BRAZIL, 6) == [BRAZIL, PORTUGAL, BRAZIL]


def test_crlf_is_not_split() -> None:
    assert is_boundary("a\r\nb", 2) is False
    assert is_boundary("a\r\nb", 1) is True


def test_a_limit_below_two_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        split_text("abc", 1)


# split_tail


def test_split_tail_keeps_text_that_fits() -> None:
    assert split_tail("short", 10) == ("", "short")
    assert split_tail("  ", 10) == ("", "")


def test_split_tail_takes_the_longest_natural_ending() -> None:
    text = "para one is long\n\npara two\nline three"
    head, tail = split_tail(text, 20)
    assert (head, tail) == ("para one is long", "para two\nline three")


def test_split_tail_cuts_between_characters_when_it_must() -> None:
    head, tail = split_tail("x" * 10 + "😀" * 3, 5)
    assert tail == "😀😀"
    assert head == "x" * 10 + "😀"


# fit_label


def test_fit_label_keeps_labels_that_fit() -> None:
    assert fit_label("Yes", 20) == "Yes"
    assert fit_label("a" * 20, 20) == "a" * 20


def test_fit_label_shortens_with_an_ellipsis() -> None:
    assert fit_label("a" * 21, 20) == "a" * 19 + ELLIPSIS
    assert fit_label("Confirm the appointment", 20) == "Confirm the appoint" + ELLIPSIS


def test_fit_label_drops_whitespace_before_the_ellipsis() -> None:
    assert fit_label("Hello world, everyone", 7) == "Hello" + ELLIPSIS


def test_fit_label_never_splits_a_character() -> None:
    assert fit_label("ab😀cd", 4) == "ab" + ELLIPSIS
    assert fit_label("abcde\u0301f", 6) == "abcd" + ELLIPSIS
    assert fit_label(FAMILY * 2, 10) == FAMILY + ELLIPSIS


def test_fit_label_to_one_character_is_the_ellipsis() -> None:
    assert fit_label("long", 1) == ELLIPSIS
    with pytest.raises(ValueError):
        fit_label("x", 0)


# unique_labels


def test_unique_labels_adds_a_counter_to_duplicates() -> None:
    assert unique_labels(["Yes", "Yes", "No"], 20) == ["Yes", "Yes 2", "No"]


def test_unique_labels_distinguishes_labels_that_collide_after_fitting() -> None:
    labels = ["Appointment on Monday 9h", "Appointment on Monday 10h"]
    fitted = unique_labels(labels, 20)
    assert fitted == ["Appointment on Mond" + ELLIPSIS, "Appointment on Mo" + ELLIPSIS + " 2"]
    assert all(len(label) <= 20 for label in fitted)


def test_unique_labels_ignores_case_and_skips_taken_counters() -> None:
    assert unique_labels(["ok", "OK", "ok 2"], 20) == ["ok", "OK 2", "ok 2 2"]
    assert unique_labels(["a", "a 2", "a"], 20) == ["a", "a 2", "a 3"]


def test_unique_labels_fails_clearly_when_no_counter_fits() -> None:
    with pytest.raises(ValueError, match="unique"):
        unique_labels(["a", "a"], 2)


# properties

chunks = st.one_of(
    st.text(),
    st.sampled_from([" ", "\n", "\n\n", "\r\n", "\t", "\u2029", "\xa0"]),
    st.sampled_from(["😀", PAIR, FAMILY, BRAZIL, "e\u0301", "\u0301", "\u200d", "👍🏽"]),
)
texts = st.lists(chunks, max_size=40).map("".join)


@given(texts, st.integers(min_value=2, max_value=50))
def test_split_text_property(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert all(piece and text_length(piece) <= limit for piece in pieces)
    assert all(length(piece) <= limit for piece in pieces)
    assert_only_whitespace_lost(text, pieces)
    # Hypothesis text has no lone surrogates, so a pair cut in two would be missing here.
    assert sum(piece.count(PAIR) for piece in pieces) == text.count(PAIR)


@given(texts, st.integers(min_value=2, max_value=50))
def test_split_tail_property(text: str, limit: int) -> None:
    head, tail = split_tail(text, limit)
    assert text_length(tail) <= limit
    assert bool(tail) == bool(text.strip())
    assert_only_whitespace_lost(text, [piece for piece in (head, tail) if piece])
    assert head.count(PAIR) + tail.count(PAIR) == text.count(PAIR)


@given(texts, st.integers(min_value=1, max_value=30))
def test_fit_label_property(text: str, limit: int) -> None:
    fitted = fit_label(text, limit)
    assert length(fitted) <= limit
    if length(text) <= limit:
        assert fitted == text
    else:
        assert fitted.endswith(ELLIPSIS)
        assert text.startswith(fitted[: -len(ELLIPSIS)])


@given(st.lists(texts, max_size=12), st.integers(min_value=4, max_value=30))
def test_unique_labels_property(labels: list[str], limit: int) -> None:
    fitted = unique_labels(labels, limit)
    assert len(fitted) == len(labels)
    assert all(length(label) <= limit for label in fitted)
    keys = [label.strip().casefold() for label in fitted]
    assert len(set(keys)) == len(keys)
