"""Extractive summary: caller's own informative sentences, capped, personal numbers masked."""

from __future__ import annotations

from workorders.classify import classify
from workorders.summary import MAX_CHARS, summarize


def test_greetings_dropped_informative_sentences_kept_numbers_masked() -> None:
    text = (
        "喂，你好。请问是12348吗？我想问一下，我在工地干了大半年，包工头到现在一分钱没给。"
        "我家里有两个孩子。工钱一共三万五千元。我电话13800138000。谢谢啊。"
    )
    result = classify(text)
    summary = summarize(text, result.evidence)
    assert summary == "我在工地干了大半年，包工头到现在一分钱没给，工钱一共三万五千元"
    assert "13800138000" not in summarize(text + "电话13800138000有欠条", ("欠条",))


def test_asr_transcript_without_punctuation_is_cut_to_the_cap() -> None:
    words = "我 老公 喝 了 酒 就 打 我 已经 好几 次 了 " * 6 + "身份证 11010519491231002X"
    summary = summarize(words, ("老公",))
    assert len(summary) <= MAX_CHARS
    assert summary.startswith("我老公喝了酒就打我")
    assert " " not in summary


def test_cap_is_respected_and_long_first_sentence_is_cut() -> None:
    long_sentence = "我跟邻居因为一堵墙的事情" * 12
    summary = summarize(long_sentence + "。", ("邻居",), max_chars=40)
    assert len(summary) == 40 and summary.endswith("…")


def test_without_evidence_the_first_sentences_are_used() -> None:
    assert summarize("我想咨询一个问题。就是关于我家的事。", ()) == "我想咨询一个问题，关于我家的事"


def test_empty_and_greeting_only_give_empty_summary() -> None:
    assert summarize("") == ""
    assert summarize("喂，你好。谢谢。") == ""
