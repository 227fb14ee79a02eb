"""How many test entities intent-conditioned slot decoding must lose even with every intent right.

python scripts/intent_slot_coverage.py configs/atis.yaml ../shared/data/atis

Counts the test entities whose type train never showed with the sentence's gold label: conditioned decoding
(`condition_on`) forbids exactly those.
"""

from __future__ import annotations

import sys

from mtst.config import load_config
from mtst.data import load_splits
from mtst.data.labels import tags_by_sentence_label


def main(config_path: str, data_dir: str) -> None:
    config = load_config(config_path, **{"data.dir": data_dir})
    sentence = next(task for task in config.tasks if task.type == "sentence").annotation
    token = next(task for task in config.tasks if task.type == "token").annotation
    splits = load_splits(config.data)
    allowed = tags_by_sentence_label(splits.train, sentence, token)
    entities = lost = sentences = 0
    for example in splits.test:
        openings = [tag for tag in example.annotations[token] if tag.startswith("B-")]
        forbidden = [tag for tag in openings if tag not in allowed.get(example.annotations[sentence], ())]
        entities, lost, sentences = entities + len(openings), lost + len(forbidden), sentences + bool(forbidden)
    print(
        f"{data_dir}: {lost} of {entities} test entities ({100 * lost / entities:.2f} %), in {sentences} of "
        f"{len(splits.test)} sentences, have a type train never showed with the sentence's gold label"
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
