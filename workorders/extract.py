"""Fields found in a transcript: phone numbers, amounts, dates, identity-card numbers (masked).

This module owns the rules that turn free Chinese text (typed by a seat, or an ASR transcript
with spaces between words and digits spoken as characters) into typed fields for a work order.
It is pure: no I/O, no clock unless ``today`` is omitted.

Personal data. An identity-card number is returned **masked only** (``110***********1234``):
the clear number never leaves this module, so it cannot reach the event log or the database
by accident. Phone numbers are returned clear *and* masked because the work order needs the
callback number; the caller must store the clear one protected (keyed hash / encrypted) and
show only ``masked``. ``redact(text)`` masks both in free text (for a stored transcript or a
summary).

How it works: the text is normalised first (full-width digits to ASCII; runs of seven or more
spoken digits such as "一三八 零零一三 八零零零" or "1 3 8 ..." to plain digits, since nobody
says an amount that way), then each kind is matched in turn and its span blanked, so a digit
is never counted twice: identity cards (18 characters, ISO 7064 MOD 11-2 check digit and a
real birth date), mobile numbers (1[3-9] + 9 digits, optional +86 and 3-4-4 grouping),
landlines (area code 0xx/0xxx + 7-8 digits, or a local number right after 电话/座机/号码),
dates, then amounts.

Amounts: Arabic or Chinese numerals with a currency word (元/块/块钱/圆/人民币) or a 万/亿
unit: "35000元", "3.5万元", "3万5", "1,200块", "三万五千元", "三万五" (= 35000, the spoken
elision), "两千多块" (2000, ``approximate``). Dates: "2026年3月5日", "2026-03-05", "3月5号",
"三月五号", "去年十月", "今年3月", "上个月5号", "昨天"; a date without a year takes the year of
``today`` (``year_assumed``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

_CN_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_CN_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}
# Only digits and the characters of a phone number: a Chinese comma must stay a separator.
_FULLWIDTH = str.maketrans("０１２３４５６７８９Ｘｘ－＋（）", "0123456789Xx-+()")

# Digits as spoken one by one (no 两: that one belongs to amounts such as 两千).
_SPOKEN = "零〇一幺二三四五六七八九"
_SPOKEN_RUN = re.compile(rf"[{_SPOKEN}](?:\s?[{_SPOKEN}]){{6,}}")
_SPACED_DIGITS = re.compile(r"(?<!\d)\d(?:[ ]\d){6,}(?!\d)")

_ID = re.compile(r"(?<![\dA-Za-z])(\d{6}[ ]?\d{8}[ ]?\d{3}[\dXx])(?![\dA-Za-z])")
_MOBILE = re.compile(r"(?<![\d+])(?:\+?86[ -]?)?(1[3-9]\d(?:[ -]?\d{4}){2})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(?:\((0\d{2,3})\)|(0\d{2,3}))[ -]?([2-9]\d{6,7})(?!\d)")
_LOCAL = re.compile(r"(?:电话|座机|号码)[^\d]{0,4}(?<!\d)([2-9]\d{6,7})(?!\d)")

_CN_NUM = "零〇一二两三四五六七八九十百千万亿"
# A number starts with a digit (or 十): 千万/万一/百分之 are words, not amounts.
_NUMBER = rf"(?:\d{{1,3}}(?:,\d{{3}})+|\d+(?:\.\d+)?|[零〇一二两三四五六七八九十])[\d.点{_CN_NUM}]*"
_AMOUNT = re.compile(
    rf"(?<![\d.])(?P<num>{_NUMBER})(?P<approx>多|来|余)?"
    r"(?P<cur>块钱|块|元钱|元|圆|人民币)?"
)
_NOT_MONEY_AFTER = set("人个次平米里岁年月日号天斤公位辆户套间分秒点期级倍层栋楼")

_Y = r"(?P<year>\d{4}|[零〇一二三四五六七八九]{4})年"
_M = r"(?P<month>1[0-2]|0?[1-9]|十[一二]?|[一二三四五六七八九])月份?"
_D = (
    r"(?P<day>3[01]|[12]\d|0?[1-9]|三十一?|二十[一二三四五六七八九]?|十[一二三四五六七八九]?"
    r"|[一二三四五六七八九])(?:日|号)"
)
_REL_YEAR = {"前年": -2, "去年": -1, "今年": 0, "明年": 1}
_REL_DAY = {"前天": -2, "昨天": -1, "今天": 0, "明天": 1, "后天": 2}
_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(?P<year>\d{4})[-/.](?P<month>1[0-2]|0?[1-9])[-/.](?P<day>3[01]|[12]\d|0?[1-9])(?!\d)"),
    re.compile(rf"{_Y}{_M}(?:{_D})?"),
    re.compile(rf"(?P<rely>前年|去年|今年|明年){_M}(?:{_D})?"),
    re.compile(rf"(?P<relm>上个?月|这个?月|本月|下个?月)(?:{_D})?"),
    re.compile(rf"(?<![\d{_CN_NUM}]){_M}(?:{_D})?"),
    re.compile(r"(?P<reld>前天|昨天|今天|明天|后天)"),
)  # fmt: skip
_BLANK = "\x00"


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    kind: str  # mobile | landline
    number: str  # digits only (landline: area code + number) — store protected
    masked: str

    def __repr__(self) -> str:  # keep clear numbers out of logs and tracebacks
        return f"PhoneNumber(kind={self.kind!r}, masked={self.masked!r})"


@dataclass(frozen=True, slots=True)
class Amount:
    value: Decimal  # in yuan
    text: str
    approximate: bool = False  # "两千多块": at least this much


@dataclass(frozen=True, slots=True)
class DateMention:
    text: str
    year: int
    month: int
    day: int | None
    year_assumed: bool = False  # no year said: the year of ``today`` was taken
    relative: bool = False  # 去年 / 上个月 / 昨天 ... resolved against ``today``

    @property
    def iso(self) -> str:
        base = f"{self.year:04d}-{self.month:02d}"
        return base if self.day is None else f"{base}-{self.day:02d}"


@dataclass(frozen=True, slots=True)
class Extraction:
    phones: tuple[PhoneNumber, ...] = ()
    amounts: tuple[Amount, ...] = ()
    dates: tuple[DateMention, ...] = ()
    id_cards: tuple[str, ...] = field(default=())  # masked only


# --- numbers -------------------------------------------------------------------------------
def parse_chinese_number(text: str) -> Decimal | None:
    """Chinese (or mixed) numeral to a number: 三万五千 → 35000, 三万五 → 35000, 3万5 → 35000,
    两千零五 → 2005, 十八万八 → 188000, 3.5万 → 35000, 三点五万 → 35000. None if not a number."""
    text = text.replace(",", "").strip()
    if not text:
        return None
    if "点" in text:
        whole, _, frac = text.partition("点")
        tail = frac.rstrip("万亿")
        unit = frac[len(tail) :]
        digits = "".join(str(_CN_DIGITS[c]) if c in _CN_DIGITS else c for c in tail)
        if not digits.isdigit():
            return None
        head = parse_chinese_number(whole) if whole else Decimal(0)
        if head is None:
            return None
        return _apply_big(Decimal(f"{head}.{digits}"), unit)
    total = Decimal(0)  # everything above the current 万/亿 section
    section = Decimal(0)  # the current section (below 万)
    number: Decimal | None = None  # the digit(s) waiting for a unit
    last_unit = 0  # the unit just before a trailing digit, for the spoken elision
    zero_seen = False
    i = 0
    while i < len(text):
        char = text[i]
        if char.isdigit():
            j = i
            while j < len(text) and (text[j].isdigit() or text[j] == "."):
                j += 1
            try:
                number = Decimal(text[i:j])
            except InvalidOperation:
                return None
            i = j
            continue
        if char in _CN_DIGITS:
            value = _CN_DIGITS[char]
            if value == 0:
                zero_seen = True
            number = Decimal(value) if number is None else number * 10 + value
        elif char in _CN_SMALL_UNITS:
            unit = _CN_SMALL_UNITS[char]
            section += (number if number is not None else Decimal(1)) * unit
            number, last_unit, zero_seen = None, unit, False
        elif char in _CN_BIG_UNITS:
            unit = _CN_BIG_UNITS[char]
            section += number or 0
            if section == 0:
                return None
            if unit == 100_000_000:
                total = (total + section) * unit
            else:
                total += section * unit
            section, number, last_unit, zero_seen = Decimal(0), None, unit, False
        else:
            return None
        i += 1
    if number is not None:
        # "三万五" / "两千五": a lone trailing digit right after a unit is one unit lower.
        if last_unit >= 10 and not zero_seen and number < 10:
            number *= last_unit // 10
        section += number
    result = total + section
    return result


def _apply_big(value: Decimal, unit: str) -> Decimal:
    for char in unit:
        value *= _CN_BIG_UNITS[char]
    return value


# --- identity cards ------------------------------------------------------------------------
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a resident identity-card number (GB 11643)."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def is_valid_id_number(number: str) -> bool:
    number = number.upper()
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return int(number[6:10]) >= 1900 and id_check_digit(number[:17]) == number[17]


def mask_id_number(number: str) -> str:
    """110***********1234: the region's first three characters and the last four only."""
    number = number.upper()
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def _mask_phone(digits: str, area: str = "") -> str:
    """138****8000; a landline keeps its area code: 010****3456."""
    if not area and len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]}****{digits[-4:]}"
    return area + "*" * (len(digits) - len(area) - 4) + digits[-4:]


# --- normalisation -------------------------------------------------------------------------
def _normalise(text: str) -> str:
    text = (text or "").translate(_FULLWIDTH)
    text = _SPOKEN_RUN.sub(
        lambda m: "".join(str(_CN_DIGITS[c]) for c in m.group() if not c.isspace()), text
    )
    return _SPACED_DIGITS.sub(lambda m: m.group().replace(" ", ""), text)


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + _BLANK * (end - start) + text[end:]


# --- dates ---------------------------------------------------------------------------------
def _small_cn_int(text: str) -> int:
    if text.isdigit():
        return int(text)
    if len(text) == 4:  # a year said digit by digit: 二〇二六
        return int("".join(str(_CN_DIGITS[c]) for c in text))
    value = parse_chinese_number(text)
    return int(value) if value is not None else 0


def _shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _date_from(match: re.Match[str], today: date) -> DateMention | None:
    groups = {k: v for k, v in match.groupdict().items() if v}
    text = match.group()
    if "reld" in groups:
        day = today + timedelta(days=_REL_DAY[groups["reld"]])
        return DateMention(text, day.year, day.month, day.day, relative=True)
    day_value = _small_cn_int(groups["day"]) if "day" in groups else None
    relative, assumed = False, False
    if "relm" in groups:
        word = groups["relm"]
        delta = -1 if word.startswith("上") else 1 if word.startswith("下") else 0
        year, month = _shift_month(today.year, today.month, delta)
        relative = True
    else:
        month = _small_cn_int(groups["month"])
        if "year" in groups:
            year = _small_cn_int(groups["year"])
        elif "rely" in groups:
            year, relative = today.year + _REL_YEAR[groups["rely"]], True
        else:
            year, assumed = today.year, True
    if not 1 <= month <= 12 or not 1900 <= year <= 2200:
        return None
    if day_value is not None:
        try:
            date(year, month, day_value)
        except ValueError:
            return None
    return DateMention(text, year, month, day_value, year_assumed=assumed, relative=relative)


# --- the public entry points ---------------------------------------------------------------
def extract(text: str, today: date | None = None) -> Extraction:
    """All fields found in ``text``, each kind in order of appearance."""
    if today is None:
        today = datetime.now(SHANGHAI).date()
    work = _normalise(text)
    id_cards: list[str] = []
    for match in _ID.finditer(work):
        number = match.group(1).replace(" ", "")
        if is_valid_id_number(number):
            id_cards.append(mask_id_number(number))
        # Blank it whatever the check digit says: an 18-digit number is never a phone or amount.
        work = _blank(work, match.start(), match.end())

    phones: list[tuple[int, PhoneNumber]] = []
    for match in _MOBILE.finditer(work):
        digits = re.sub(r"\D", "", match.group(1))
        phones.append((match.start(), PhoneNumber("mobile", digits, _mask_phone(digits))))
        work = _blank(work, match.start(), match.end())
    for match in _LANDLINE.finditer(work):
        area = match.group(1) or match.group(2)
        digits = area + match.group(3)
        phones.append((match.start(), PhoneNumber("landline", digits, _mask_phone(digits, area))))
        work = _blank(work, match.start(), match.end())
    for match in _LOCAL.finditer(work):
        digits = match.group(1)
        phones.append((match.start(1), PhoneNumber("landline", digits, _mask_phone(digits))))
        work = _blank(work, match.start(1), match.end(1))
    phones.sort(key=lambda item: item[0])

    dates: list[tuple[int, DateMention]] = []
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(work):
            mention = _date_from(match, today)
            if mention is not None:
                dates.append((match.start(), mention))
                work = _blank(work, match.start(), match.end())
    dates.sort(key=lambda item: item[0])

    amounts = []
    for match in _AMOUNT.finditer(work):
        raw = match.group("num").rstrip(".点")
        has_digit = any(c.isdigit() or c in _CN_DIGITS for c in raw)
        big = raw[-1:] in _CN_BIG_UNITS or any(u in raw for u in _CN_BIG_UNITS)
        after = work[match.end() : match.end() + 1]
        if not has_digit or not (match.group("cur") or (big and after not in _NOT_MONEY_AFTER)):
            continue
        value = parse_chinese_number(raw)
        if value is None or value <= 0:
            continue
        if value == value.to_integral_value():
            value = value.quantize(Decimal(1))
        amounts.append(Amount(value, match.group().rstrip(".点"), bool(match.group("approx"))))

    return Extraction(
        phones=tuple(p for _, p in phones),
        amounts=tuple(amounts),
        dates=tuple(d for _, d in dates),
        id_cards=tuple(id_cards),
    )


def _mask_landline(match: re.Match[str]) -> str:
    area = match.group(1) or match.group(2)
    return _mask_phone(area + match.group(3), area)


def redact(text: str) -> str:
    """``text`` with identity-card and phone numbers masked (for storage, summaries, logs).

    Works on the normalised text (spoken digit runs become digits), so the result may differ
    from the input in those runs and in full-width characters.
    """
    work = _normalise(text)
    work = _ID.sub(lambda m: mask_id_number(m.group(1).replace(" ", "")), work)
    work = _MOBILE.sub(lambda m: _mask_phone(re.sub(r"\D", "", m.group(1))), work)
    work = _LANDLINE.sub(_mask_landline, work)
    return _LOCAL.sub(lambda m: m.group()[: m.start(1) - m.start()] + _mask_phone(m.group(1)), work)
