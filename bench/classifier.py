"""Legal topic classifier bench: accuracy on the held-out split of workorders/data/labelled.yaml.

Usage: ``.venv/bin/python bench/classifier.py [--labelled FILE]``

Trains on the ``train`` split, evaluates on the ``test`` split (never used for training), and
prints: accuracy from the transcript alone, accuracy with the IVR choice where the sentence has
one, a lexicon-only and a naive-Bayes-only baseline, per-topic precision/recall, and the most
frequent confusions. Takes well under a second.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workorders.classify import TOPICS, Classifier, Example, evaluate, load_examples


def _fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:5.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", help="labelled YAML (default: the shipped set)")
    args = parser.parse_args(argv)

    examples = load_examples(args.labelled)
    train = [e for e in examples if e.split == "train"]
    test = [e for e in examples if e.split == "test"]
    pairs = [(e.text, e.topic) for e in train]
    classifier = Classifier(pairs)
    with_ivr: list[Example] = [e for e in test if e.ivr]

    result = evaluate(classifier, test)
    ivr_result = evaluate(classifier, test, use_ivr=True)
    lexicon_only = evaluate(Classifier([], nb_weight=0.0), test)
    nb_only = evaluate(Classifier(pairs, lexicon={}), test)

    print(f"labelled set: {len(examples)} sentences, train {len(train)}, held-out test {len(test)}")
    print(f"held-out accuracy (transcript only):      {result['accuracy']:.3f}  (n={result['n']})")
    print(f"held-out accuracy (transcript + IVR):     {ivr_result['accuracy']:.3f}  "
          f"({len(with_ivr)} of {len(test)} have an IVR choice)")  # fmt: skip
    print(f"baseline lexicon only:                    {lexicon_only['accuracy']:.3f}")
    print(f"baseline naive Bayes only:                {nb_only['accuracy']:.3f}")
    print()
    print(f"{'topic':<8}  precision  recall  support")
    for topic in TOPICS:
        row = result["per_topic"][topic]
        label = topic + "\u3000" * (4 - len(topic))  # pad with ideographic spaces to align
        print(f"{label}  {_fmt(row['precision'])}      {_fmt(row['recall'])}   {row['support']:>4}")
    print()
    print("confusions (gold -> predicted: count):")
    for (gold, predicted), count in result["confusions"][:15] or [(("-", "-"), 0)]:
        print(f"  {gold} -> {predicted}: {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
