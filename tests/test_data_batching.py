from collections import Counter

import pytest
import torch

from mtst.data.batching import (
    Collator,
    LengthGroupedBatchSampler,
    entity_sampler,
    entity_sampling_weights,
)
from mtst.data.features import Features
from mtst.data.labels import IGNORE_ID
from mtst.tasks import make_task
from mtst.tasks.token_head import token_class_weights

TASKS = {
    "slots": make_task("slots", "token", "tags", ("O", "B-x", "I-x")),
    "intent": make_task("intent", "sentence", "label", ("A", "B")),
}


def test_collate_pads_to_longest_in_batch():
    batch = [
        Features([101, 5, 102], [1], {"slots": [IGNORE_ID, 1, IGNORE_ID], "intent": 0}),
        Features([101, 5, 6, 7, 102], [1, 2], {"slots": [IGNORE_ID, 0, 2, IGNORE_ID, IGNORE_ID], "intent": 1}),
    ]
    out = Collator(pad_token_id=0, tasks=TASKS)(batch)
    assert out["input_ids"].tolist() == [[101, 5, 102, 0, 0], [101, 5, 6, 7, 102]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert out["labels"]["slots"].tolist() == [
        [IGNORE_ID, 1, IGNORE_ID, IGNORE_ID, IGNORE_ID],
        [IGNORE_ID, 0, 2, IGNORE_ID, IGNORE_ID],
    ]
    assert out["labels"]["intent"].tolist() == [0, 1]


def test_collate_drops_a_task_missing_from_the_batch():
    batch = [Features([101, 102], [], {"intent": 0}), Features([101, 102], [], {"intent": 1})]
    out = Collator(0, TASKS)(batch)
    assert set(out["labels"]) == {"intent"}


def test_collate_ignores_rows_without_a_task_but_keeps_the_others():
    batch = [
        Features([101, 5, 102], [1], {"slots": [IGNORE_ID, 1, IGNORE_ID]}),
        Features([101, 102], [], {"intent": 1}),
    ]
    out = Collator(0, TASKS)(batch)
    assert out["labels"]["intent"].tolist() == [IGNORE_ID, 1]
    assert out["labels"]["slots"].tolist() == [[IGNORE_ID, 1, IGNORE_ID], [IGNORE_ID] * 3]


def test_sampler_weights_and_upsampling():
    assert entity_sampling_weights([True, False, True], 3.0).tolist() == [3.0, 1.0, 3.0]
    flags = [True] * 100 + [False] * 100
    sampler = entity_sampler(flags, 3.0, seed=1)
    drawn = Counter(flags[i] for _ in range(50) for i in sampler)
    assert drawn[True] / drawn[False] == pytest.approx(3.0, rel=0.1)


def test_sampler_is_seeded():
    flags = [True, False] * 10
    assert list(entity_sampler(flags, 2.0, seed=5)) == list(entity_sampler(flags, 2.0, seed=5))


def test_token_class_weights_by_hand():
    # tag 0 seen 3 times, tag 1 once; K=2.
    encoded = [[IGNORE_ID, 0, 0, 1, IGNORE_ID], [0]]
    inverse = token_class_weights(encoded, 2, "inverse")
    # raw 1/(K f): [1/(2*.75), 1/(2*.25)] = [2/3, 2]; mean over tokens .75*2/3+.25*2 = 1 already.
    assert inverse.tolist() == pytest.approx([2 / 3, 2.0])
    sqrt = token_class_weights(encoded, 2, "inverse_sqrt")
    raw = torch.tensor([(2 / 3) ** 0.5, 2**0.5])
    assert sqrt.tolist() == pytest.approx((raw / (raw * torch.tensor([0.75, 0.25])).sum()).tolist())
    assert token_class_weights(encoded, 2, "none").tolist() == [1.0, 1.0]


def _grouped(lengths, seed, batch_size=4, mega_batch_factor=5):
    sampler = entity_sampler([i % 3 == 0 for i in range(len(lengths))], 2.0, seed)
    return LengthGroupedBatchSampler(sampler, lengths, batch_size, mega_batch_factor)


def test_length_grouped_batches_keep_exactly_the_drawn_indices():
    lengths = [(7 * i) % 40 + 3 for i in range(203)]
    grouped = _grouped(lengths, seed=3)
    drawn = list(entity_sampler([i % 3 == 0 for i in range(203)], 2.0, seed=3))
    batches = list(grouped)
    assert len(batches) == len(grouped) == 51  # ceil(203 / 4), as without grouping
    assert Counter(i for batch in batches for i in batch) == Counter(drawn)
    assert sorted(len(batch) for batch in batches)[1:] == [4] * 50  # one short batch, at the very end of the draw


def test_length_grouped_batches_are_length_homogeneous():
    lengths = [(7 * i) % 40 + 3 for i in range(400)]
    batches = list(_grouped(lengths, seed=1))
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    # A mega-batch of 20 drawn sentences sorted into 5 batches: each batch spans a fifth of the length range.
    assert sum(spread) / len(spread) < 15
    drawn_order = list(entity_sampler([i % 3 == 0 for i in range(400)], 2.0, seed=1))
    ungrouped = [drawn_order[i : i + 4] for i in range(0, 400, 4)]
    ungrouped_spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in ungrouped]
    assert sum(spread) < sum(ungrouped_spread) / 2


def test_length_grouped_order_is_seeded_and_shuffled():
    lengths = [(7 * i) % 40 + 3 for i in range(400)]
    assert list(_grouped(lengths, seed=5)) == list(_grouped(lengths, seed=5))
    assert list(_grouped(lengths, seed=5)) != list(_grouped(lengths, seed=6))
    first_lengths = [lengths[batch[0]] for batch in _grouped(lengths, seed=5)]
    assert first_lengths != sorted(first_lengths)  # batch order is shuffled, not shortest first


def test_length_grouped_epoch_replays_from_the_generator_state():
    grouped = _grouped([(7 * i) % 40 + 3 for i in range(100)], seed=2)
    list(grouped)  # epoch 1
    state = grouped.generator.get_state()
    second = list(grouped)
    grouped.generator.set_state(state)
    assert list(grouped) == second


def test_a_mega_batch_of_one_batch_keeps_each_drawn_batch_together(tiny_config, tiny_model):
    """`train.length_group_batches: 1` sorts within each drawn batch only: the batches hold the sentences the
    ungrouped loader's would, in shuffled order; the config's value reaches the loader's sampler."""
    from mtst.data import load_corpora
    from mtst.data.loaders import corpus_loader

    grouped_cfg = tiny_config.train.model_copy(
        update={"group_by_length": True, "length_group_batches": 1, "batch_size": 2}
    )
    corpus = load_corpora(tiny_config)[0]
    grouped = corpus_loader(grouped_cfg, tiny_model, corpus).batch_sampler
    assert grouped.mega_batch_size == grouped_cfg.batch_size
    start = grouped.generator.get_state()
    drawn = list(grouped.sampler)
    width = grouped_cfg.batch_size
    assert len(drawn) > 2 * width  # several batches
    expected = Counter(frozenset(Counter(drawn[i : i + width]).items()) for i in range(0, len(drawn), width))
    grouped.generator.set_state(start)  # the epoch draws the same indices again
    assert Counter(frozenset(Counter(batch).items()) for batch in grouped) == expected
