"""`make test` is deterministic: property tests draw the same examples on every run."""

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st


def test_property_tests_draw_the_same_examples_every_time():
    if hypothesis_settings.get_current_profile_name() == "fuzz":
        pytest.skip("`make fuzz` draws random examples on purpose")

    def draws():
        seen = []

        @given(st.lists(st.integers()), st.text())
        def collect(numbers, text):
            seen.append((numbers, text))

        collect()
        return seen

    assert draws() == draws()
    assert hypothesis_settings.default.database is None  # nothing replayed from earlier runs
