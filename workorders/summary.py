"""A short extractive summary of a request (about 80 characters) for the work-order list.

Owns the choice of which of the caller's own sentences describe the request. It writes no new
text, so it cannot invent facts; it is pure.

How: the transcript is split into sentences (。！？；, line breaks; an ASR transcript without
punctuation is split at commas, else kept as one sentence). Greetings and fillers (喂, 你好,
请问是12348吗, 嗯, 那个 ...) are dropped. Sentences that carry topic evidence (the
classifier's matched phrases) or an amount or date are kept, in order; if none do, the first
sentences are. They are joined with "，" up to ``max_chars``; a first sentence longer than
that is cut with "…". Identity-card and phone numbers are masked (``extract.redact``), and
spaces an ASR puts between Chinese words are removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from workorders.classify import normalise as _classifier_form
from workorders.extract import extract, redact

MAX_CHARS = 80
_SPACE_BETWEEN_CJK = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")
_SENTENCE_END = re.compile(r"[。！？!?；;\n]+")
_COMMA = re.compile(r"[，,、]+")
_LEADING_FILLER = re.compile(
    r"^(?:喂+|你好|您好|嗯+|啊+|哦+|呃+|那个|就是|是这样的?|我想问一下|我想问问|请问一下|请问|麻烦问一下)"
    r"[，,。.\s]*"
)
_GREETING_ONLY = re.compile(
    r"^(?:喂|你好|您好|嗯|啊|哦|呃|对|好的?|谢谢|是|请问)*(?:是)?(?:12348|法律服务热线)?(?:吗|吧|啊)?$"
)


def _sentences(text: str) -> list[str]:
    # Keep the caller's characters (no NFKC, no lower case): only ASR spaces go.
    text = _SPACE_BETWEEN_CJK.sub("", redact(text)).strip()
    parts = [p.strip() for p in _SENTENCE_END.split(text) if p.strip()]
    if len(parts) <= 1 and len(text) > MAX_CHARS:
        parts = [p.strip() for p in _COMMA.split(text) if p.strip()]
    cleaned = []
    for part in parts:
        previous = None
        while previous != part:  # "喂，你好，我想问一下……": strip fillers one after another
            previous, part = part, _LEADING_FILLER.sub("", part).strip()
        if part and not _GREETING_ONLY.match(part) and part not in cleaned:
            cleaned.append(part.rstrip("，,、 "))
    return cleaned


def _informative(sentence: str, evidence: Iterable[str]) -> bool:
    folded = _classifier_form(sentence)
    if any(phrase and phrase in folded for phrase in evidence):
        return True
    found = extract(sentence)
    return bool(found.amounts or found.dates)


def summarize(transcript: str, evidence: Iterable[str] = (), *, max_chars: int = MAX_CHARS) -> str:
    """The caller's own words, shortened: informative sentences first-come, at most
    ``max_chars`` characters. ``evidence``: the classifier's matched phrases."""
    evidence = tuple(_classifier_form(e) for e in evidence)
    sentences = _sentences(transcript)
    if not sentences:
        return ""
    chosen = [s for s in sentences if _informative(s, evidence)] or sentences
    summary = ""
    for sentence in chosen:
        candidate = f"{summary}，{sentence}" if summary else sentence
        if len(candidate) > max_chars:
            break
        summary = candidate
    if not summary:  # the first sentence alone is too long: cut it
        summary = chosen[0][: max_chars - 1] + "…"
    return summary
