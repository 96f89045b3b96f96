"""Hypothesis strategies shared by the protocol tests."""

from __future__ import annotations

from hypothesis import strategies as st

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
# JSON documents of what ClickVote's packets carry (integers within 64 bits)
json_trees = st.recursive(
    scalars, lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids), max_leaves=20
)
