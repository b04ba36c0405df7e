"""Field extraction: phones, amounts (Arabic and Chinese numerals), dates, masked ID cards."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workorders.extract import (
    extract,
    id_check_digit,
    is_valid_id_number,
    mask_id_number,
    parse_chinese_number,
    redact,
)

TODAY = date(2026, 5, 20)
VALID_ID = "11010519491231002X"  # the GB 11643 sample number, check digit X


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("三万五千", 35000),
        ("三万五", 35000),
        ("3万5", 35000),
        ("3万5千", 35000),
        ("3.5万", 35000),
        ("三点五万", 35000),
        ("两千零五", 2005),
        ("十八万八", 188000),
        ("一万二", 12000),
        ("三百五", 350),
        ("十五", 15),
        ("一百零八", 108),
        ("五千零五十", 5050),
        ("一亿二千万", 120000000),
        ("1,200", 1200),
    ],
)
def test_chinese_numerals(text: str, value: int) -> None:
    assert parse_chinese_number(text) == value


def test_parse_rejects_non_numbers() -> None:
    assert parse_chinese_number("万") is None
    assert parse_chinese_number("三个") is None


def test_amounts_in_both_numeral_systems() -> None:
    found = extract(
        "他欠我三万五千元，另外3.5万元是借的，定金两千多块钱，发票1,200元，彩礼十八万八", TODAY
    )
    values = [(a.value, a.approximate) for a in found.amounts]
    assert values == [
        (Decimal(35000), False),
        (Decimal(35000), False),
        (Decimal(2000), True),
        (Decimal(1200), False),
        (Decimal(188000), False),
    ]
    assert str(found.amounts[1].value) == "35000"


def test_words_that_look_like_numbers_are_not_amounts() -> None:
    found = extract("千万别着急，干了三个月，利息百分之三十，万一他不还呢，一个人", TODAY)
    assert found.amounts == ()


def test_dates_absolute_relative_and_without_year() -> None:
    found = extract(
        "2026年3月5日签的合同，3月5号交货，去年十月借的钱，上个月5号又打了电话，"
        "二〇二五年十二月二十五号开庭，昨天他又来了，2024-02-29那天",
        TODAY,
    )
    got = [(d.text, d.iso, d.year_assumed, d.relative) for d in found.dates]
    assert got == [
        ("2026年3月5日", "2026-03-05", False, False),
        ("3月5号", "2026-03-05", True, False),
        ("去年十月", "2025-10", False, True),
        ("上个月5号", "2026-04-05", False, True),
        ("二〇二五年十二月二十五号", "2025-12-25", False, False),
        ("昨天", "2026-05-19", False, True),
        ("2024-02-29", "2024-02-29", False, False),
    ]


def test_impossible_dates_are_skipped() -> None:
    assert extract("2025年2月30日", TODAY).dates == ()


def test_mobile_and_landline_numbers() -> None:
    found = extract(
        "我电话13800138000，也可以打 +86 139-1234-5678，单位座机010-68123456，"
        "老家（0471）6912345，家里电话 8812345",
        TODAY,
    )
    assert [(p.kind, p.number, p.masked) for p in found.phones] == [
        ("mobile", "13800138000", "138****8000"),
        ("mobile", "13912345678", "139****5678"),
        ("landline", "01068123456", "010****3456"),
        ("landline", "04716912345", "0471***2345"),
        ("landline", "8812345", "***2345"),
    ]
    assert "13800138000" not in repr(found.phones)


def test_spoken_digits_from_asr() -> None:
    found = extract("我 的 电话 是 幺 三 八 零 零 一 三 八 零 零 零 欠 我 三万五", TODAY)
    assert [p.number for p in found.phones] == ["13800138000"]
    assert [a.value for a in found.amounts] == [Decimal(35000)]


def test_identity_card_is_validated_and_only_masked() -> None:
    found = extract(f"我身份证号是{VALID_ID}，手机13800138000", TODAY)
    assert found.id_cards == ("110***********002X",)
    assert [p.number for p in found.phones] == ["13800138000"]
    assert VALID_ID not in repr(found)
    # A wrong check digit is not an identity card, and not a phone or an amount either.
    wrong = extract("号码110105194912310021", TODAY)
    assert wrong.id_cards == () and wrong.phones == () and wrong.amounts == ()
    assert "110105194912310021" not in redact("号码110105194912310021")


def test_redact_masks_ids_and_phones_but_keeps_the_rest() -> None:
    text = f"身份证{VALID_ID}，电话13800138000，座机010-68123456，欠我三万元。"
    assert (
        redact(text) == "身份证110***********002X，电话138****8000，座机010****3456，欠我三万元。"
    )


_ID_BODY = st.builds(
    lambda region, born, seq: f"{region}{born:%Y%m%d}{seq:03d}",
    st.integers(110000, 659999),
    st.dates(date(1920, 1, 1), date(2025, 12, 31)),
    st.integers(0, 999),
)


@settings(max_examples=200, deadline=None)
@given(_ID_BODY, st.sampled_from(["我的身份证是", "证件号 ", "", "号码："]))
def test_any_valid_id_number_is_found_and_never_leaks(body: str, prefix: str) -> None:
    number = body + id_check_digit(body)
    assert is_valid_id_number(number)
    text = f"{prefix}{number}，请帮我查一下"
    found = extract(text, TODAY)
    assert found.id_cards == (mask_id_number(number),)
    assert number not in repr(found)
    assert number not in redact(text)
    assert found.phones == () and found.amounts == ()
