"""The fast canonical-JSON path equals the rfc8785 library on every value hypothesis finds."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from attest._internal.canonical import _simple, canonical_json

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=[])),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=[]), max_size=8), children, max_size=5
        )
    ),
    max_leaves=30,
)


@settings(max_examples=1000)
@given(json_values)
def test_same_bytes_as_rfc8785(value: object) -> None:
    try:
        expected = bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError):
        return  # not canonicalisable at all (lone surrogates, out-of-range numbers)
    assert canonical_json(value) == expected


def test_the_fast_path_is_taken_for_attestation_shaped_values() -> None:
    value = {
        "_type": "x",
        "subject": [{"name": "é\n\u2028\x01", "digest": {"sha256": "ab"}}],
        "n": 2**53 - 1,
        "b": True,
        "z": None,
    }
    assert _simple(value)
    assert canonical_json(value) == bytes(rfc8785.dumps(value))
    assert not _simple({"f": 1.5}) and not _simple({"é": 1}) and not _simple({"n": 2**53})
