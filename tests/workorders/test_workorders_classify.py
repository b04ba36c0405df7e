"""Legal topic classifier: the labelled set, held-out accuracy, IVR prior and evidence."""

from __future__ import annotations

from collections import Counter

import pytest

from workorders.classify import (
    IVR_TOPICS,
    LEXICON,
    OTHER,
    TOPICS,
    Classifier,
    classify,
    evaluate,
    load_examples,
    normalise,
)

EXAMPLES = load_examples()


def test_labelled_set_is_large_varied_and_has_a_quarter_held_out() -> None:
    assert len(EXAMPLES) >= 200
    assert len({e.text for e in EXAMPLES}) == len(EXAMPLES), "duplicate sentences"
    by_topic = Counter(e.topic for e in EXAMPLES)
    assert set(by_topic) == set(TOPICS)
    test = [e for e in EXAMPLES if e.split == "test"]
    assert 0.24 <= len(test) / len(EXAMPLES) <= 0.26
    assert {e.topic for e in test} == set(TOPICS)
    assert all(e.ivr is None or e.ivr in IVR_TOPICS for e in EXAMPLES)
    assert set(LEXICON) == set(TOPICS)


def test_held_out_accuracy_stays_above_the_floor() -> None:
    # Measured 0.83 on the 65 held-out sentences (bench/classifier.py); the floor catches a
    # regression without failing on a one-sentence change.
    train = [(e.text, e.topic) for e in EXAMPLES if e.split == "train"]
    result = evaluate(Classifier(train), [e for e in EXAMPLES if e.split == "test"])
    assert result["n"] == 65
    assert result["accuracy"] >= 0.75


def test_held_out_sentences_are_not_in_the_training_data() -> None:
    train = {e.text for e in EXAMPLES if e.split == "train"}
    assert not any(e.text in train for e in EXAMPLES if e.split == "test")


def test_clear_transcript_gives_topic_confidence_and_evidence() -> None:
    result = classify("我在工地干了半年，包工头一直拖欠工资不给，我想申请劳动仲裁")
    assert result.topic == "劳动争议"
    assert result.confidence > 0.9
    assert "拖欠工资" in result.evidence and "劳动仲裁" in result.evidence
    assert result.evidence == tuple(sorted(result.evidence, key=lambda p: (-len(p), p)))
    assert max(result.scores, key=result.scores.__getitem__) == "劳动争议"


def test_asr_spacing_and_full_width_do_not_change_the_answer() -> None:
    plain = classify("我老公喝了酒就打我，我想离婚")
    spaced = classify("我 老公 喝 了 酒 就 打 我 我 想 离婚")
    assert plain.topic == spaced.topic == "婚姻家庭"
    assert normalise("ＡＢＣ １２３ 拖欠 工资") == "abc 123 拖欠工资"


def test_ivr_choice_alone_decides_an_empty_transcript() -> None:
    result = classify("", "交通事故")
    assert result.topic == "交通事故" and result.ivr_agreed
    assert result.evidence == ()


def test_ivr_choice_is_a_prior_that_clear_evidence_overrides() -> None:
    # The caller pressed "婚姻家庭" but talks about a crash: the transcript wins.
    result = classify("我骑电动车被一辆货车撞了，交警认定对方全责，保险公司不赔", "婚姻家庭")
    assert result.topic == "交通事故"
    assert not result.ivr_agreed
    # A vague transcript keeps the IVR choice.
    for vague_text in ("你好我有个问题想咨询", "这个事情怎么处理比较好"):
        vague = classify(vague_text, "公证")
        assert vague.topic == "公证" and vague.ivr_agreed


def test_ambiguous_ivr_choice_points_to_two_topics() -> None:
    loan = classify("朋友借了我五万块钱有借条就是不还", "合同与债务")
    contract = classify("对方一直不交货还不肯付违约金", "合同与债务")
    assert loan.topic == "借贷债务" and loan.ivr_agreed
    assert contract.topic == "合同纠纷" and contract.ivr_agreed


def test_nothing_to_go_on_is_other_with_low_confidence() -> None:
    result = classify("")
    assert result.topic == OTHER
    assert result.confidence < 0.5
    assert classify("喂你好，请问明天天气怎么样").topic == OTHER


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.split == "train"][:40])
def test_confidence_is_a_probability(example) -> None:
    result = classify(example.text, example.ivr)
    assert 0.0 < result.confidence <= 1.0
    assert result.topic in TOPICS
