"""Legal topic of a request from its transcript and IVR choice: topic, confidence, evidence.

Taxonomy (``TOPICS``, what a seat and a report read):

==========  ==================================================================================
劳动争议    wages owed, dismissal, labour contract, social insurance, work injury, arbitration
婚姻家庭    divorce, custody and child support, bride price, domestic violence, support of
            parents, inheritance between relatives
合同纠纷    contracts between parties: breach, deposits, goods and payments, renovation,
            franchise, construction (not loans, not flats, not consumer purchases)
借贷债务    loans between people, IOUs, interest, online loans and debt collection, guarantees
交通事故    road accidents: liability, insurance, compensation after a crash
房产物业    flats and land: purchase, developer, renting, property management fees, leaks,
            demolition, homestead land
消费维权    consumers against merchants: refunds, fake goods, prepaid cards, online shopping
法律援助    asking for free legal help (法律援助): who qualifies, how to apply, a lawyer assigned
人民调解    asking for mediation (人民调解) of a dispute between neighbours, villagers, families
公证        notarisation: wills, powers of attorney, documents for going abroad
司法鉴定    forensic appraisal: disability grade, paternity, handwriting, re-appraisal
投诉建议    complaints about or suggestions for lawyers, legal-service staff or this hotline
其他        anything else (wrong numbers, non-legal questions, other public services)
==========  ==================================================================================

How it decides (transparent, dependency-free, no word segmentation):

1. ``normalise`` folds full-width characters, lower-cases and removes the spaces an ASR puts
   between Chinese words, so "拖欠 工资" and "拖欠工资" are the same text.
2. A weighted phrase lexicon (``LEXICON``): every phrase found in the text adds its weight to
   its topic. The phrases found for the chosen topic are the *evidence* shown to the seat.
3. A multinomial naive Bayes over character bigrams and trigrams, trained on the ``train``
   split of ``data/labelled.yaml`` shipped in this package. Its per-topic log-likelihoods are
   divided by the number of n-grams (at least ``nb_min_grams``, so long transcripts do not
   drown the other signals and short generic ones do not swing the answer) and scaled by
   ``nb_weight``. The weights were chosen by 5-fold cross-validation on the train split only.
4. The IVR choice is a prior: ``ivr_weight`` added to the topic(s) it maps to (``IVR_TOPICS``;
   "合同与债务" maps to two topics). A transcript with clear evidence of another topic
   outweighs it; an empty transcript keeps the IVR topic.

score(topic) = lexicon + nb_weight × NB + IVR prior; the topic with the highest score wins and
``confidence`` is its softmax probability over all topics. With no transcript and no usable
IVR choice the answer is 其他 with low confidence. ``bench/classifier.py`` prints the accuracy
on the held-out ``test`` split, per-topic precision/recall and the confusions.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

TOPICS: tuple[str, ...] = (
    "劳动争议",
    "婚姻家庭",
    "合同纠纷",
    "借贷债务",
    "交通事故",
    "房产物业",
    "消费维权",
    "法律援助",
    "人民调解",
    "公证",
    "司法鉴定",
    "投诉建议",
    "其他",
)
OTHER = "其他"

# IVR topic (ivr/flows/*.yaml ``topic:``) -> taxonomy topics it points to, with prior strength.
IVR_TOPICS: Mapping[str, Mapping[str, float]] = {
    **{topic: {topic: 1.0} for topic in TOPICS if topic != OTHER},
    "合同与债务": {"合同纠纷": 1.0, "借贷债务": 1.0},
    "法律援助申请": {"法律援助": 1.0},
    "legal_aid_eligibility": {"法律援助": 1.0},
    "投诉与建议": {"投诉建议": 1.0},
    "notary": {"公证": 1.0},
    "judicial_appraisal": {"司法鉴定": 1.0},
    # "other questions" in the menu says little: a weak nudge only.
    OTHER: {OTHER: 0.3},
    # Menu choices that say nothing about the legal topic.
    "general": {},
    "lawyer_consultation": {},
    "transferred_in": {},
    "office_addresses": {},
    "查询工单进度": {},
}

# Phrase -> weight per topic. Weights: 3 = nearly decisive, 2 = typical, 1 = a hint.
LEXICON: Mapping[str, Mapping[str, float]] = {
    "劳动争议": {
        "工资": 2, "拖欠工资": 3, "欠薪": 3, "讨薪": 3, "工钱": 2.5, "加班费": 3, "加班": 1.5,
        "劳动合同": 3, "辞退": 3, "开除": 2, "解雇": 3, "裁员": 2.5, "经济补偿": 3, "社保": 2,
        "五险一金": 3, "工伤": 3, "老板": 1, "单位": 1, "上班": 1.5, "包工头": 3,
        "劳动仲裁": 3, "仲裁": 1.5, "试用期": 3, "年假": 2, "离职": 2, "辞职": 2, "打工": 1.5,
        "厂里": 1.5, "干活": 1.5, "入职": 2, "劳动局": 3, "劳动监察": 3, "人事": 1.5,
        "绩效": 1.5, "工地": 2, "员工": 1.5, "招工": 1.5, "二倍工资": 3, "双倍工资": 3,
    },
    "婚姻家庭": {
        "离婚": 3, "结婚": 2, "老公": 2, "老婆": 2, "丈夫": 2, "妻子": 2, "媳妇": 1.5,
        "抚养费": 3, "抚养权": 3, "彩礼": 3, "家暴": 3, "家庭暴力": 3, "赡养": 3, "遗产": 3,
        "继承": 3, "夫妻": 2, "婚前": 2, "婚后": 2, "共同财产": 2.5, "探视": 2.5, "分居": 2,
        "出轨": 2.5, "前夫": 2.5, "前妻": 2.5, "婆婆": 1.5, "领证": 2, "结婚证": 2.5,
        "孩子": 1, "养老": 1, "生活费": 1.5, "改嫁": 2, "收养": 2.5, "监护": 1.5, "小三": 2.5,
    },
    "合同纠纷": {
        "合同": 2, "违约": 3, "违约金": 3, "定金": 3, "订金": 2.5, "协议": 1.5, "装修": 2,
        "货款": 3, "发货": 2, "供货": 2.5, "合作": 1.5, "加盟": 2.5, "加盟费": 3,
        "工程款": 2.5, "承包": 1.5, "解除合同": 3, "口头约定": 2, "甲方": 2, "乙方": 2,
        "转让费": 2.5, "签了": 1, "对方公司": 1.5, "交货": 2.5, "尾款": 2, "合伙": 2,
    },
    "借贷债务": {
        "借钱": 3, "借了": 2, "借款": 3, "贷款公司": 3, "诉讼时效": 1, "欠条": 3, "借条": 3,
        "还钱": 3, "欠钱": 3,
        "欠我": 2, "不还": 2, "利息": 2, "高利贷": 3, "网贷": 3, "贷款": 2, "催收": 3,
        "担保": 2, "债务": 3, "老赖": 3, "信用卡": 2.5, "逾期": 2, "转账": 1.5, "要账": 3,
        "讨债": 3, "追债": 3, "本金": 2, "还款": 2, "借给": 2.5, "担保人": 3, "欠债": 3,
    },
    "交通事故": {
        "车祸": 3, "交通事故": 3, "撞了": 2.5, "撞到": 2.5, "被撞": 3, "追尾": 3, "肇事": 3,
        "交警": 3, "责任认定": 2.5, "保险公司": 2, "交强险": 3, "商业险": 2, "电动车": 1.5,
        "摩托车": 1.5, "开车": 1.5, "司机": 1.5, "逃逸": 3, "刮蹭": 3, "骑车": 1.5,
        "醉驾": 2.5, "酒驾": 2.5, "车险": 2.5, "误工费": 1.5, "斑马线": 2, "轿车": 2,
        "货车": 2, "出租车": 1.5, "撞伤": 3, "撞倒": 3,
    },
    "房产物业": {
        "物业": 3, "物业费": 3, "房子": 2, "房产": 2.5, "房产证": 3, "不动产": 2.5, "买房": 2.5,
        "购房": 2.5, "开发商": 3, "交房": 3, "租房": 2.5, "房东": 3, "租客": 2, "房租": 2.5,
        "押金": 1.5, "漏水": 2.5, "业主": 2.5, "小区": 2, "停车位": 2, "拆迁": 3, "征收": 2.5,
        "宅基地": 3, "违建": 2.5, "二手房": 3, "过户": 2, "产权": 2.5, "首付": 2, "电梯": 1.5,
        "供暖": 2, "暖气": 2, "租金": 2, "中介": 1.5, "房本": 3, "网签": 3,
    },
    "消费维权": {
        "退货": 3, "吃出": 2.5, "二手车": 1.5, "退款": 3, "商家": 3, "网购": 3, "淘宝": 3,
        "拼多多": 3, "京东": 2.5,
        "质量问题": 2.5, "假货": 3, "过期": 2.5, "食品": 2, "三包": 3, "售后": 3,
        "消费者": 3, "预付卡": 3, "办卡": 2.5, "会员卡": 3, "健身房": 3, "美容院": 3,
        "培训机构": 2.5, "退费": 3, "直播": 2, "快递": 2, "12315": 3, "消协": 3, "商场": 2,
        "维修": 1.5, "虚假宣传": 3, "保健品": 3, "理发店": 2.5, "充值": 2, "店家": 2.5,
        "买了": 1, "退一赔三": 3, "假一赔十": 3, "店里": 1.5,
    },
    "法律援助": {
        "法律援助": 3, "援助": 2.5, "免费律师": 3, "请不起律师": 3, "没钱请律师": 3,
        "请律师": 1.5, "援助中心": 3, "低保": 2.5, "困难": 1.5, "经济困难": 3, "残疾": 1.5,
        "指派律师": 3, "免费": 1.5, "打官司": 1, "特困": 2.5, "困难证明": 3, "没钱": 1.5,
        "请个律师": 1.5, "代写": 1.5, "起诉状": 1,
    },
    "人民调解": {
        "调解": 3, "人民调解": 3, "调解委员会": 3, "调解员": 3, "邻居": 2.5, "邻里": 3,
        "矛盾": 2, "吵架": 2, "打架": 1.5, "村委会": 2, "居委会": 2, "社区": 1.5, "协调": 2,
        "和解": 2, "村里": 1.5, "地界": 2.5, "噪音": 2, "说和": 2.5, "砍树": 2, "堵路": 2,
        "占地": 1.5, "兄弟": 1, "闹得": 1,
    },
    "公证": {
        "公证": 3, "公证处": 3, "公证书": 3, "委托书": 2, "出国": 2, "留学": 2, "学历": 2,
        "翻译": 1.5, "签证": 2, "无犯罪记录": 2.5, "亲属关系": 2.5, "声明书": 2, "提存": 2,
        "认证": 1.5, "海外": 1.5, "国外": 1.5, "办证明": 1, "出生证明": 1.5,
    },
    "司法鉴定": {
        "鉴定": 3, "司法鉴定": 3, "伤残鉴定": 3, "伤残等级": 3, "亲子鉴定": 3, "笔迹": 3,
        "精神病": 2.5, "鉴定所": 3, "鉴定机构": 3, "鉴定费": 3, "鉴定意见": 3, "鉴定报告": 3,
        "重新鉴定": 3, "评残": 3, "dna": 3, "血缘": 2.5, "伤情": 2, "几级伤残": 3, "做鉴定": 3,
    },
    "投诉建议": {
        "投诉": 4, "反映": 1.5, "拖拉": 2, "偏向": 2, "没人回": 2, "不耐烦": 2.5, "举报": 2.5,
        "建议": 2, "意见": 1.5, "态度": 2, "服务态度": 3,
        "不负责任": 3.5, "律所": 1.5, "律师事务所": 1.5, "不办事": 2.5, "乱收费": 2.5,
        "热线": 1.5, "打不通": 2.5, "没人接": 2, "工作人员": 2, "司法所": 1.5, "效率": 1.5,
        "表扬": 2.5, "感谢": 1, "不满意": 2.5, "推诿": 4, "回访": 1.5, "敷衍": 3, "踢皮球": 3,
    },
    "其他": {
        "天气": 3, "打错": 3, "测试": 2.5, "户口": 1.5, "身份证丢": 2, "火车票": 2.5,
        "公交": 2, "12345": 1.5, "落户": 2, "医保": 2, "招聘": 1.5, "考试": 1.5, "挂号": 2.5,
        "办护照": 2, "违章": 1.5, "停水": 2, "停电": 2,
    },
}  # fmt: skip

_CJK = r"\u3400-\u9fff"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_NOT_TEXT = re.compile(rf"[^0-9a-z{_CJK}]+")


def normalise(text: str) -> str:
    """NFKC, lower case, and no spaces between Chinese characters (ASR output has them)."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return _SPACE_BETWEEN_CJK.sub("", text).strip()


def _ngrams(text: str) -> list[str]:
    grams: list[str] = []
    for run in _NOT_TEXT.split(normalise(text)):
        for n in (2, 3):
            grams.extend(run[i : i + n] for i in range(len(run) - n + 1))
    return grams


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    topic: str
    split: str  # train | test
    ivr: str | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    topic: str
    confidence: float  # softmax probability of ``topic``, 0..1
    evidence: tuple[str, ...]  # lexicon phrases found for ``topic``, longest first
    ivr_topic: str | None  # the IVR choice as given
    ivr_agreed: bool  # the chosen topic is one the IVR choice pointed to
    scores: Mapping[str, float]  # every topic's combined score (for debugging and the bench)


def load_examples(path: str | None = None) -> list[Example]:
    """The labelled set: ``data/labelled.yaml`` in this package unless ``path`` is given."""
    if path is None:
        text = resources.files("workorders").joinpath("data/labelled.yaml").read_text("utf-8")
    else:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    data = yaml.safe_load(text)
    examples = []
    for number, item in enumerate(data["items"], 1):
        if item["topic"] not in TOPICS:
            raise ValueError(f"item {number}: unknown topic {item['topic']!r}")
        if item["split"] not in ("train", "test"):
            raise ValueError(f"item {number}: split must be train or test")
        examples.append(Example(item["text"], item["topic"], item["split"], item.get("ivr")))
    return examples


class NaiveBayes:
    """Multinomial naive Bayes over character bigrams and trigrams, Laplace-smoothed."""

    def __init__(self, examples: Iterable[tuple[str, str]], alpha: float = 0.5) -> None:
        counts: dict[str, Counter[str]] = {t: Counter() for t in TOPICS}
        docs: Counter[str] = Counter()
        for text, topic in examples:
            counts[topic].update(_ngrams(text))
            docs[topic] += 1
        self.vocabulary = frozenset(g for c in counts.values() for g in c)
        total_docs = sum(docs.values()) or 1
        size = len(self.vocabulary) or 1
        self._prior = {t: math.log((docs[t] + 1) / (total_docs + len(TOPICS))) for t in TOPICS}
        self._log_p: dict[str, dict[str, float]] = {}
        self._unseen: dict[str, float] = {}
        for topic, counter in counts.items():
            total = sum(counter.values()) + alpha * size
            self._log_p[topic] = {g: math.log((n + alpha) / total) for g, n in counter.items()}
            self._unseen[topic] = math.log(alpha / total)

    def log_likelihood(self, text: str) -> tuple[dict[str, float], int]:
        """Per-topic log-likelihood of the known n-grams, and how many there were."""
        grams = [g for g in _ngrams(text) if g in self.vocabulary]
        scores = {}
        for topic in TOPICS:
            table, unseen = self._log_p[topic], self._unseen[topic]
            scores[topic] = sum(table.get(g, unseen) for g in grams)
        return scores, len(grams)


class Classifier:
    """Lexicon + naive Bayes + IVR prior. Build once (``default_classifier()``), then call
    ``classify`` as often as needed; it holds no per-call state."""

    def __init__(
        self,
        examples: Iterable[tuple[str, str]],
        *,
        lexicon: Mapping[str, Mapping[str, float]] = LEXICON,
        nb_weight: float = 4.0,
        ivr_weight: float = 2.0,
        alpha: float = 0.5,
        nb_min_grams: int = 12,
    ) -> None:
        self.nb = NaiveBayes(examples, alpha)
        self.nb_min_grams = nb_min_grams
        self.nb_weight, self.ivr_weight = nb_weight, ivr_weight
        self._phrases = {
            t: {normalise(p): w for p, w in lexicon.get(t, {}).items()} for t in TOPICS
        }

    def lexicon_matches(self, text: str) -> dict[str, list[str]]:
        norm = normalise(text)
        return {
            topic: sorted((p for p in phrases if p in norm), key=lambda p: (-len(p), p))
            for topic, phrases in self._phrases.items()
        }

    def classify(self, transcript: str, ivr_topic: str | None = None) -> Classification:
        matches = self.lexicon_matches(transcript)
        scores = {t: sum(self._phrases[t][p] for p in matches[t]) for t in TOPICS}
        nb, grams = self.nb.log_likelihood(transcript)
        if grams:
            # Mean log-likelihood relative to the best topic (0 for the best, negative else);
            # a short text is averaged as if it had nb_min_grams n-grams, so three generic
            # n-grams ("问一下", "怎么办") cannot outvote the IVR choice.
            best = max(nb.values())
            for topic in TOPICS:
                scores[topic] += self.nb_weight * (nb[topic] - best) / max(grams, self.nb_min_grams)
        prior = IVR_TOPICS.get(ivr_topic or "", {})
        for topic, strength in prior.items():
            scores[topic] += self.ivr_weight * strength
        if not grams and not any(matches.values()) and not prior:
            scores[OTHER] += 1.0  # nothing to go on: "other", with low confidence
        topic = max(TOPICS, key=lambda t: (scores[t], t == OTHER))
        top = max(scores.values())
        total = sum(math.exp(s - top) for s in scores.values())
        return Classification(
            topic=topic,
            confidence=round(1.0 / total, 4),
            evidence=tuple(matches[topic]),
            ivr_topic=ivr_topic,
            ivr_agreed=topic in prior,
            scores={t: round(s, 4) for t, s in scores.items()},
        )


@lru_cache(maxsize=1)
def default_classifier() -> Classifier:
    """Trained on the ``train`` split of the shipped labelled set (the test split is held out)."""
    return Classifier((e.text, e.topic) for e in load_examples() if e.split == "train")


def classify(transcript: str, ivr_topic: str | None = None) -> Classification:
    """Classify with the default classifier."""
    return default_classifier().classify(transcript, ivr_topic)


def evaluate(classifier: Classifier, examples: Sequence[Example], *, use_ivr: bool = False) -> dict:
    """Accuracy, per-topic precision/recall and confusions of ``classifier`` on ``examples``."""
    pairs = []
    for example in examples:
        predicted = classifier.classify(example.text, example.ivr if use_ivr else None).topic
        pairs.append((example.topic, predicted))
    correct = sum(1 for gold, pred in pairs if gold == pred)
    per_topic = {}
    for topic in TOPICS:
        tp = sum(1 for g, p in pairs if g == topic and p == topic)
        predicted = sum(1 for _, p in pairs if p == topic)
        actual = sum(1 for g, _ in pairs if g == topic)
        per_topic[topic] = {
            "precision": tp / predicted if predicted else None,
            "recall": tp / actual if actual else None,
            "support": actual,
        }
    confusions = Counter((g, p) for g, p in pairs if g != p)
    return {
        "n": len(pairs),
        "accuracy": correct / len(pairs) if pairs else 0.0,
        "per_topic": per_topic,
        "confusions": confusions.most_common(),
    }
