from hypothesis import given
from hypothesis import strategies as st

from hotline.privacy import mask_number, normalise_number, number_key


def test_masks():
    assert mask_number("13800138000") == "138****8000"
    assert mask_number("+86 138-0013-8000") == "138****8000"
    assert mask_number("02112345678") == "021****5678"
    assert mask_number("12345678") == "****5678"
    assert mask_number("110") == "*10"
    assert mask_number("") == "unknown"


@given(st.text(alphabet="0123456789", min_size=3, max_size=20))
def test_a_mask_never_reveals_the_whole_number(digits):
    masked = mask_number(digits)
    assert masked != normalise_number(digits)
    assert len(masked) == len(normalise_number(digits))


def test_number_key_is_stable_keyed_and_format_independent():
    key = "k" * 64
    assert number_key("13800138000", key) == number_key("+86 138 0013 8000", key)
    assert number_key("13800138000", key) != number_key("13800138001", key)
    assert number_key("13800138000", key) != number_key("13800138000", "other")
    assert "13800138000" not in number_key("13800138000", key)
