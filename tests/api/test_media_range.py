"""HTTP Range parsing for media (RFC 9110 §14), bounded to one chunk per response: properties over all sizes,
headers and chunk sizes, and the documented edge cases."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from verbatim.api.media import ByteRange, Unsatisfiable, parse_range

sizes = st.integers(min_value=0, max_value=10**9)
chunks = st.integers(min_value=1, max_value=10**7)
positions = st.integers(min_value=0, max_value=2 * 10**9)


@given(sizes, chunks, positions, st.one_of(st.none(), positions))
def test_a_satisfiable_range_is_inside_the_object_starts_where_asked_and_never_exceeds_a_chunk(
    size: int, chunk: int, first: int, last: int | None
) -> None:
    header = f"bytes={first}-{'' if last is None else last}"
    answer = parse_range(header, size, chunk)
    if last is not None and last < first:
        assert answer is None  # an invalid range-spec: the header is ignored
    elif first >= size:
        assert answer == Unsatisfiable(size)
    else:
        assert isinstance(answer, ByteRange)
        assert answer.start == first and first <= answer.end < size
        assert 1 <= answer.length <= chunk
        assert answer.end == min(size - 1, first + chunk - 1, size - 1 if last is None else last)


@given(sizes, chunks, st.integers(min_value=0, max_value=2 * 10**9))
def test_a_suffix_range_ends_at_the_end_of_the_object(size: int, chunk: int, suffix: int) -> None:
    answer = parse_range(f"bytes=-{suffix}", size, chunk)
    if suffix == 0 or size == 0:
        assert answer == Unsatisfiable(size)
    else:
        assert isinstance(answer, ByteRange)
        assert answer.start == max(0, size - suffix) and answer.length <= chunk


@given(st.text(max_size=40), sizes, chunks)
def test_any_header_gives_an_answer_and_never_an_exception(header: str, size: int, chunk: int) -> None:
    answer = parse_range(header, size, chunk)
    assert answer is None or isinstance(answer, (ByteRange, Unsatisfiable))


def test_the_documented_cases() -> None:
    assert parse_range(None, 100, 10) is None
    assert parse_range("items=0-5", 100, 10) is None
    assert parse_range("bytes=0-", 100, 10) == ByteRange(0, 9)
    assert parse_range("bytes=5-7, 20-30", 100, 10) == ByteRange(5, 7)  # only the first of several
    assert parse_range("bytes=90-200", 100, 50) == ByteRange(90, 99)
    assert parse_range("bytes=100-", 100, 10) == Unsatisfiable(100)
    assert Unsatisfiable(100).content_range == "bytes */100"
    assert ByteRange(0, 9).content_range(100) == "bytes 0-9/100"
    assert parse_range("bytes=-", 100, 10) is None and parse_range("bytes=a-b", 100, 10) is None
