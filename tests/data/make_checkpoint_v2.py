"""Writes tests/data/checkpoint_v2/: a tiny checkpoint in format 2 as mtst wrote it before the package was
regrouped (model.py, crf.py, word_vectors.py at the top level), and the predictions it gave then.

Run once, from the repository root, with the code of that time:
    python tests/data/make_checkpoint_v2.py
tests/test_checkpoint_compat.py loads it with today's code and expects the same predictions.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, BertTokenizerFast

FOLDER = Path(__file__).resolve().parent / "checkpoint_v2"
WORDS = "play the song yesterday by beatles music queen what is weather in paris for new york tomorrow will it rain"
TEXTS = ["play music by queen", "what is the weather in new york tomorrow", "will it rain in paris", "play"]


def tiny_tokenizer() -> BertTokenizerFast:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS.split())), "##s", "##er"]
    ids = {piece: index for index, piece in enumerate(vocab)}
    tokenizer = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def main() -> None:
    from mtst.inference.predictor import Predictor
    from mtst.model.multitask import EncoderInfo, MultiTaskModel
    from mtst.tasks import make_task

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    encoder = BertModel(config)
    tags = ("O", "B-city", "I-city", "B-artist", "B-date")
    tasks = [
        make_task("intent", "sentence", "label", ("GetWeather", "PlayMusic")),
        make_task(
            "slots",
            "token",
            "tags",
            tags,
            crf=True,
            condition_on="intent",
            allowed_tags={"GetWeather": ["B-city", "I-city", "B-date"], "PlayMusic": ["B-artist"]},
        ),
        make_task(
            "ner", "token", "ner", ("O", "B-LOC", "I-LOC"), subtoken_pooling="first_last", encoder_layers="scalar_mix"
        ),
        make_task("topics", "multilabel", "labels", ("music", "travel", "weather"), decision_threshold=0.45),
    ]
    model = MultiTaskModel(encoder, tokenizer, tasks, EncoderInfo(name="tiny-bert", max_length=32))
    with torch.no_grad():  # random but decisive: predictions far from ties, so they survive float noise
        for parameter in model.heads.parameters():
            parameter.normal_(0, 2.0)
    model.save_pretrained(FOLDER)
    predictions = Predictor.from_checkpoint(FOLDER).predict(TEXTS)
    (FOLDER.parent / "checkpoint_v2_predictions.json").write_text(json.dumps(predictions, indent=1) + "\n")


if __name__ == "__main__":
    main()
