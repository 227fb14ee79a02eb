"""The modelling options: CRF token head, label smoothing, intent-conditioned slot decoding."""

import itertools
import json
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from torch.nn import functional as F
from typer.testing import CliRunner

from mtst.cli import app
from mtst.config import load_config
from mtst.data.example import Example
from mtst.data.features import Features
from mtst.data.labels import IGNORE_ID, tags_by_sentence_label
from mtst.errors import ConfigError
from mtst.inference import runner
from mtst.inference.predictor import Predictor
from mtst.inference.runner import _decode_batch, decode_order
from mtst.model.crf import CRF, FORBIDDEN, bio_constraints
from mtst.model.multitask import MultiTaskModel
from mtst.tasks import Task, make_task, task_config
from mtst.tasks.sentence import SentenceHead
from mtst.tasks.token_head import TokenHead, pack_words
from mtst.training.loop import train
from tests.conftest import TOY_SENTENCES

LABELS = ("O", "B-city", "I-city")


def random_crf(labels=LABELS, seed=0) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(labels)
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.normal_()
    return crf


def path_scores(crf: CRF, emissions: torch.Tensor) -> dict[tuple[int, ...], float]:
    """Every tag path of one sentence with its unnormalised log score, by enumeration."""
    start, transitions, end = crf._scores(emissions.device)
    scores = {}
    for path in itertools.product(range(emissions.size(1)), repeat=emissions.size(0)):
        score = start[path[0]] + end[path[-1]] + sum(emissions[i, t] for i, t in enumerate(path))
        score = score + sum(transitions[a, b] for a, b in itertools.pairwise(path))
        scores[path] = float(score.detach())
    return scores


def test_likelihood_matches_enumeration_for_ragged_rows():
    crf = random_crf()
    emissions = torch.randn(2, 4, 3)
    tags = torch.tensor([[1, 2, 0, 1], [0, 1, 0, 0]])
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    nll = crf.neg_log_likelihood(emissions, tags, mask)
    for row, length in enumerate((4, 2)):
        scores = path_scores(crf, emissions[row, :length])
        log_z = torch.logsumexp(torch.tensor(list(scores.values())), 0)
        gold = scores[tuple(tags[row, :length].tolist())]
        assert float(nll[row].detach()) == pytest.approx(float(log_z) - gold, abs=1e-4)


def test_viterbi_path_and_marginals_match_enumeration():
    crf = random_crf(seed=3)
    emissions = torch.randn(4, 3)
    scores = path_scores(crf, emissions)
    path, probabilities = crf.decode(emissions)
    assert tuple(path) == max(scores, key=scores.get)
    log_z = torch.logsumexp(torch.tensor(list(scores.values())), 0)
    for word, tag in enumerate(path):
        expected = sum(torch.exp(torch.tensor(s) - log_z) for p, s in scores.items() if p[word] == tag)
        assert probabilities[word] == pytest.approx(float(expected), abs=1e-5)
    assert crf.decode(torch.zeros(0, 3)) == ([], [])


def test_crf_scores_follow_the_emissions_device():
    # Inference decodes on the CPU while the weights may sit on an accelerator; no GPU here, so the meta device
    # stands in for "not where the CRF's parameters are" (it computes shapes only).
    crf = random_crf(seed=5)
    emissions = torch.randn(2, 4, 3, device="meta")
    mask = torch.ones(2, 4, dtype=torch.bool, device="meta")
    assert crf.best_path_neg_log_likelihood(emissions, mask).shape == (2,)
    assert all(score.device.type == "meta" for score in crf._scores(emissions.device))


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 6), min_size=1, max_size=5),
    tags=st.sampled_from([LABELS, ("O", "B-a", "I-a", "B-b", "I-b", "X")]),
    scale=st.sampled_from([1.0, 40.0]),  # 40: steps whose scores lie a hundred or more apart
    seed=st.integers(0, 2**16),
)
def test_batched_decoding_gives_each_sentence_what_decoding_it_alone_gives(lengths, tags, scale, seed):
    crf = random_crf(tags, seed)
    width = max(lengths)
    emissions = 100 * torch.randn(len(lengths), width, len(tags))  # the padding is loud, and must not leak in
    mask = torch.arange(width) < torch.tensor(lengths).unsqueeze(1)
    emissions[mask] = scale * torch.randn(int(mask.sum()), len(tags))
    # Some rows decoded under condition_on: tags other than `O` forbidden for the whole sentence.
    emissions += FORBIDDEN * ((torch.rand(len(lengths), 1, len(tags)) < 0.3) & (torch.arange(len(tags)) > 0))
    batched = crf.decode_batch(emissions, mask)
    assert len(batched) == len(lengths)
    for row, length in enumerate(lengths):
        path, probabilities = batched[row]
        alone, alone_probabilities = crf.decode(emissions[row, :length])
        assert path == alone and len(path) == length
        assert probabilities == pytest.approx(alone_probabilities, abs=1e-5)
        if length and len(tags) ** length <= 100:  # and both are the enumeration's best path, with its marginals
            scores = path_scores(crf, emissions[row, :length].double())
            assert tuple(path) == max(scores, key=scores.get)
            log_z = torch.logsumexp(torch.tensor(list(scores.values()), dtype=torch.float64), 0)
            for word, tag in enumerate(path):
                chosen = torch.tensor([value for p, value in scores.items() if p[word] == tag], dtype=torch.float64)
                assert probabilities[word] == pytest.approx(float((chosen.logsumexp(0) - log_z).exp()), abs=1e-5)


def test_batched_decoding_of_no_words_or_one_sentence():
    crf = random_crf(seed=5)
    assert crf.decode_batch(torch.zeros(3, 0, 3), torch.zeros(3, 0, dtype=torch.bool)) == [([], [])] * 3
    emissions = torch.randn(1, 4, 3)
    assert crf.decode_batch(emissions, torch.ones(1, 4, dtype=torch.bool)) == [crf.decode(emissions[0])]


def test_bio_constraints_forbid_an_inside_tag_without_its_begin():
    start, transitions = bio_constraints(("O", "B-city", "I-city", "B-date", "I-date", "NOUN"))
    assert start.tolist() == [0, 0, FORBIDDEN, 0, FORBIDDEN, 0]
    allowed_into_i_city = [i for i in range(6) if transitions[i, 2] == 0]
    assert allowed_into_i_city == [1, 2]
    assert transitions[:, [0, 1, 3, 5]].eq(0).all()  # nothing else is constrained
    crf = CRF(("O", "B-city", "I-city"))
    emissions = torch.tensor([[0.0, 0.0, 5.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0]])  # argmax says I O I
    path, _ = crf.decode(emissions)
    assert path[0] != 2 and not (path[1] == 0 and path[2] == 2)


def test_pack_words_moves_first_subtokens_to_the_front_and_drops_unlabelled_rows():
    logits = torch.arange(3 * 5 * 2, dtype=torch.float).view(3, 5, 2)
    labels = torch.tensor(
        [
            [IGNORE_ID, 1, IGNORE_ID, 0, IGNORE_ID],
            [IGNORE_ID] * 5,  # a row of another corpus
            [IGNORE_ID, 0, 1, 1, IGNORE_ID],
        ]
    )
    emissions, tags, mask = pack_words(logits, labels)
    assert tags.tolist() == [[1, 0, 0], [0, 1, 1]]
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    assert torch.equal(emissions[0, :2], logits[0, [1, 3]]) and torch.equal(emissions[1], logits[2, 1:4])


def spec(**options) -> Task:
    """A slot task reading each word's first sub-token (these head tests feed no word_ids), plus `options`."""
    return make_task("slots", "token", "tags", LABELS, **{"subtoken_pooling": "first", **options})


def test_crf_head_loss_is_per_word_and_trains_the_transitions():
    torch.manual_seed(0)
    head = TokenHead(8, spec(crf=True))
    features = {"token_embeddings": torch.randn(2, 6, 8)}
    labels = torch.tensor([[IGNORE_ID, 1, 2, 0, IGNORE_ID, IGNORE_ID], [IGNORE_ID, 0, IGNORE_ID, 1, 0, IGNORE_ID]])
    logits, loss = head(features, labels)
    emissions, tags, mask = pack_words(logits, labels)
    expected = head.crf.neg_log_likelihood(emissions, tags, mask).sum() / 6
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert head.crf.transitions.grad.abs().sum() > 0 and head.classifier.weight.grad is not None
    assert not any(name.endswith("penalty") for name, _ in head.named_parameters())


@pytest.mark.parametrize("crf", [True, False])
def test_train_words_divisor_gives_a_word_the_same_weight_in_short_and_long_batches(crf):
    """Train has 2 and 4 words a sentence (mean 3): the summed word loss is divided by 3 per labelled sentence,
    not by the batch's own word count."""
    torch.manual_seed(0)
    task = spec(crf=crf, loss_divisor="train_words", class_weights="none")
    head = TokenHead(8, task).eval()  # no dropout: the same logits in both calls
    head.fit_to_train([[IGNORE_ID, 1, 0, IGNORE_ID], [IGNORE_ID, 1, 2, 0, 0, IGNORE_ID], None], task)
    assert head.words_per_sentence == 3.0
    features = {"token_embeddings": torch.randn(3, 5, 8)}
    short = torch.tensor([[IGNORE_ID, 1, 0, IGNORE_ID, IGNORE_ID]] * 2 + [[IGNORE_ID] * 5])  # 2 labelled, 4 words
    logits, loss = head(features, short)
    if crf:
        emissions, tags, mask = pack_words(logits, short)
        summed = head.crf.neg_log_likelihood(emissions, tags, mask).sum()
    else:
        summed = F.cross_entropy(logits.flatten(0, 1), short.flatten(), ignore_index=IGNORE_ID, reduction="sum")
    assert loss.item() == pytest.approx(summed.item() / (2 * 3))
    head.words_per_sentence = None  # the default divisor: the batch's 4 words
    assert head(features, short)[1].item() == pytest.approx(summed.item() / 4)


def test_a_corpus_without_the_token_task_leaves_its_fitted_head_alone(tiny_checkpoint):
    """Multi-corpus training fits the heads once per corpus; the topic corpus (no tags) comes second here."""
    model = MultiTaskModel.from_pretrained(tiny_checkpoint)  # a softmax slot head: class weights apply
    model.tasks["slots"] = model.tasks["slots"].model_copy(update={"loss_divisor": "train_words"})
    head = model.heads["slots"]
    tagged = [Features([101, 7, 9, 102], [1, 2], {"intent": 0, "slots": [IGNORE_ID, 1, 0, IGNORE_ID]})]
    topic_only = [Features([101, 8, 102], [1], {"intent": 1}), Features([101, 102], [], {"slots": None})]
    model.fit_heads(tagged)
    weights, words = head.class_weights.clone(), head.words_per_sentence
    assert words == 2.0 and not torch.allclose(weights, torch.ones_like(weights))
    model.fit_heads(topic_only)
    assert torch.equal(head.class_weights, weights) and head.words_per_sentence == words


def test_label_smoothing_is_passed_to_both_losses():
    torch.manual_seed(0)
    sentence = SentenceHead(8, make_task("intent", "sentence", "label", ("a", "b", "c"), label_smoothing=0.2))
    features = {"sentence_embedding": torch.randn(4, 8), "token_embeddings": torch.randn(4, 3, 8)}
    labels = torch.tensor([0, 1, 2, 1])
    logits, loss = sentence(features, labels)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.2).item())
    token = TokenHead(8, spec(label_smoothing=0.2, crf=False))
    tags = torch.tensor([[0, 1, 2]] * 4)
    logits, loss = token(features, tags)
    expected = F.cross_entropy(logits.flatten(0, 1), tags.flatten(), label_smoothing=0.2)
    assert loss.item() == pytest.approx(expected.item())


def test_the_slot_head_reads_the_intent_distribution_and_its_gradient_reaches_the_intent_head():
    torch.manual_seed(0)
    head = TokenHead(8, spec(intent_input="intent", intent_input_size=2))
    intent_logits = torch.tensor([[4.0, -4.0]], requires_grad=True)
    features = {"token_embeddings": torch.randn(1, 3, 8), "outputs": {"intent": intent_logits}}
    first, loss = head(features, torch.tensor([[0, 1, 2]]))
    loss.backward()
    assert intent_logits.grad.abs().sum() > 0  # trained jointly, as in Stack-Propagation
    features["outputs"] = {"intent": torch.tensor([[-4.0, 4.0]])}
    assert not torch.allclose(head(features)[0], first)


def test_tags_by_sentence_label_come_from_train_cooccurrence():
    train = [
        Example.from_words(words.split(), {"label": label, "tags": tuple(tags.split())})
        for words, tags, label in TOY_SENTENCES
    ]
    allowed = tags_by_sentence_label(train, "label", "tags")
    assert allowed["GetWeather"] == ("B-city", "B-date", "I-city", "O")
    assert "B-city" not in allowed["PlayMusic"] and "B-artist" in allowed["PlayMusic"]


class _Model:
    """What `_decode_batch` reads off a model: tasks and their heads (plain heads here: no CRF)."""

    def __init__(self, tasks):
        self.tasks = {task.name: task for task in tasks}
        self.heads = {task.name: SimpleNamespace(crf=None) for task in tasks}


def test_conditioned_decoding_drops_slots_the_predicted_intent_never_had():
    intent = make_task("intent", "sentence", "label", ("GetWeather", "PlayMusic"))
    allowed = {"GetWeather": ("O", "B-city", "I-city"), "PlayMusic": ("O",)}
    slots = spec(condition_on="intent", allowed_tags=allowed)
    logits = {"intent": torch.tensor([[0.0, 3.0]]), "slots": torch.tensor([[[0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]])}
    plain = _decode_batch(_Model([intent, spec()]), logits, [[0, 1]])[0]
    assert plain["slots"].tags == ["B-city", "I-city"]
    conditioned = _decode_batch(_Model([slots, intent]), logits, [[0, 1]])[0]
    assert conditioned["intent"].label == "PlayMusic" and conditioned["slots"].tags == ["O", "O"]
    assert list(conditioned) == ["slots", "intent"]  # the model's task order is kept
    logits["intent"] = torch.tensor([[3.0, 0.0]])
    assert _decode_batch(_Model([intent, slots]), logits, [[0, 1]])[0]["slots"].tags == ["B-city", "I-city"]


@pytest.mark.parametrize("crf", [True, False])
@pytest.mark.parametrize("conditioned", [True, False])
def test_run_model_decodes_a_batch_as_it_decodes_each_sentence_alone(tiny_encoder_dir, monkeypatch, crf, conditioned):
    from mtst.model.encoder import load_encoder
    from mtst.model.multitask import EncoderInfo

    tokenizer, encoder = load_encoder(str(tiny_encoder_dir), 64)
    tags = ("O", "B-city", "I-city", "B-artist", "I-artist")
    allowed = {"GetWeather": ("O", "B-city", "I-city"), "PlayMusic": ("O", "B-artist", "I-artist")}
    options = {"condition_on": "intent", "allowed_tags": allowed} if conditioned else {}
    tasks = [
        make_task("slots", "token", "tags", tags, crf=crf, temperature=1.5, **options),  # decoded after intent
        make_task("intent", "sentence", "label", ("GetWeather", "PlayMusic")),
    ]
    torch.manual_seed(2)  # a seed whose random heads predict both intents
    model = MultiTaskModel(encoder, tokenizer, tasks, EncoderInfo(max_length=64))
    with torch.no_grad():
        for parameter in model.heads.parameters():
            parameter.normal_()
    texts = [words.split() for words, _, _ in TOY_SENTENCES] * 2 + [["paris"], ["new", "york"] * 40]  # truncated
    batches = []

    def recording(model, logits, word_starts):
        batches.append((logits, word_starts, _decode_batch(model, logits, word_starts)))
        return batches[-1][2]

    monkeypatch.setattr(runner, "_decode_batch", recording)
    predictions, _ = runner.run_model(model, [Example.from_words(words) for words in texts], batch_size=8)
    assert len(batches) == 3 and {p["intent"].label for p in predictions} == {"GetWeather", "PlayMusic"}
    assert any(tag is None for _, starts, _ in batches for row in starts for tag in row)  # cut-off words
    for logits, word_starts, batched in batches:
        for row, starts in enumerate(word_starts):
            alone = {}
            for name in decode_order(model.tasks):
                alone[name] = model.tasks[name].decode(logits[name][row], starts, alone, model.heads[name])
            assert batched[row]["intent"] == alone["intent"]
            assert batched[row]["slots"].tags == alone["slots"].tags
            assert batched[row]["slots"].scores == pytest.approx(alone["slots"].scores, abs=1e-5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tasks": [{"name": "intent", "type": "sentence", "crf": True}]}, "token tasks only"),
        (
            {
                "tasks": [
                    {"name": "intent", "type": "sentence"},
                    {"name": "slots", "type": "token", "condition_on": "x"},
                ]
            },
            "condition_on must name a sentence task",
        ),
        (
            {"tasks": [{"name": "a", "type": "token"}, {"name": "slots", "type": "token", "condition_on": "a"}]},
            "condition_on must name a sentence task",
        ),
        (
            {"tasks": [{"name": "a", "type": "token"}, {"name": "slots", "type": "token", "intent_input": "a"}]},
            "intent_input must name a sentence task",
        ),
        (
            {"tasks": [{"name": "slots", "type": "token", "crf": True, "label_smoothing": 0.1}]},
            "label_smoothing does not apply to a crf task",
        ),
    ],
)
def test_bad_option_combinations_are_config_errors(tmp_path, overrides, message):
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(overrides))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_task_level_error_names_the_task_as_the_yaml_does(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"tasks": [{"name": "slots", "type": "token", "label_smoothing": 0.1}]}))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).endswith(
        "tasks.0: task 'slots': label_smoothing does not apply to a crf task (its loss is the CRF's)"
    )  # not pydantic's `tasks.0.token: Value error, ...`


@pytest.fixture
def crf_run(tiny_config, tmp_path):
    tasks = [
        {"name": "intent", "type": "sentence", "field": "label", "label_smoothing": 0.1},
        {"name": "slots", "type": "token", "field": "tags", "crf": True, "condition_on": "intent"},
    ]
    tasks[1]["intent_input"] = "intent"
    config = tiny_config.model_copy(update={"tasks": [task_config(**task) for task in tasks]})
    config.train.epochs = 3
    return config, train(config)


def test_a_run_with_every_option_saves_and_reloads_them(crf_run):
    config, summary = crf_run
    best = f"{config.output_dir}/best"
    model = MultiTaskModel.from_pretrained(best)
    slots = model.tasks["slots"]
    assert slots.crf and slots.condition_on == "intent" and model.heads["slots"].crf is not None
    assert set(slots.allowed_tags) == {"GetWeather", "PlayMusic"}
    assert model.tasks["intent"].label_smoothing == 0.1
    with safe_open(f"{best}/model.safetensors", framework="pt") as handle:
        assert {"heads.slots.crf.transitions", "heads.slots.crf.start", "heads.slots.crf.end"} <= set(handle.keys())
    saved = json.loads(open(f"{best}/config.json").read())
    assert saved["tasks"][1]["allowed_tags"]["PlayMusic"] == ["B-artist", "B-genre", "B-song", "I-artist", "O"]
    assert slots.intent_input == "intent" and slots.intent_input_size == 2
    # The word's first and last sub-token vectors (the default pooling) and the intent distribution.
    assert model.heads["slots"].classifier.in_features == 2 * 32 + 2
    assert summary["test"]["slots.f1"] >= 0.0
    # Every decoded entity respects BIO and the predicted intent's slots.
    for row in Predictor(model).predict([words for words, _, _ in TOY_SENTENCES]):
        allowed = set(slots.allowed_tags[row["label"]])
        assert all(f"B-{entity['label']}" in allowed for entity in row["entities"])


@pytest.mark.slow
def test_crf_checkpoint_gives_the_same_tags_through_onnx(crf_run):
    config, _ = crf_run
    best = f"{config.output_dir}/best"
    result = CliRunner().invoke(app, ["export", best, "--format", "onnx"])
    assert result.exit_code == 0, result.output
    texts = [words for words, _, _ in TOY_SENTENCES]
    eager = Predictor.from_checkpoint(best).predict(texts)
    onnx = Predictor.from_checkpoint(best, backend="onnx").predict(texts)
    assert [r["label"] for r in eager] == [r["label"] for r in onnx]
    for torch_row, onnx_row in zip(eager, onnx, strict=True):
        assert [(e["start"], e["end"], e["label"]) for e in torch_row["entities"]] == [
            (e["start"], e["end"], e["label"]) for e in onnx_row["entities"]
        ]
        assert [e["score"] for e in torch_row["entities"]] == pytest.approx(
            [e["score"] for e in onnx_row["entities"]], abs=1e-3
        )


def test_windows_of_a_long_text_keep_bio_and_the_reported_intent_slots():
    from mtst.data.tags import repair_iob2
    from mtst.inference.windows import Window, merge_windows
    from mtst.tasks.sentence import SentencePrediction
    from mtst.tasks.token import TokenPrediction

    intent = make_task("intent", "sentence", "label", ("GetWeather", "PlayMusic"))
    allowed = {"PlayMusic": ("O", "B-artist", "I-artist"), "GetWeather": ("O", "B-city", "I-city")}
    slots = make_task(
        "slots",
        "token",
        "tags",
        ("O", "B-artist", "I-artist", "B-city", "I-city"),
        **{"condition_on": "intent", "allowed_tags": allowed},
    )
    first = Example.from_words("play a b c".split())
    second = Example.from_words("b c d e".split())
    windows = [Window(first, 0), Window(second, 2)]
    predictions = [
        {
            "intent": SentencePrediction("PlayMusic", 0.9),
            "slots": TokenPrediction(["O", "B-artist", "O", "O"], [1.0] * 4),
        },
        {
            "intent": SentencePrediction("GetWeather", 0.8),
            "slots": TokenPrediction(["O", "I-artist", "B-city", "O"], [1.0] * 4),
        },
    ]
    merged = merge_windows({"intent": intent, "slots": slots}, windows, predictions)
    assert merged["intent"].label == "PlayMusic"
    # word 3 from window 2 (I-artist after O) becomes B-artist; its B-city is not a PlayMusic slot.
    assert merged["slots"].tags == ["O", "B-artist", "O", "B-artist", "O", "O"]
    assert repair_iob2(["I-x", "I-x", "O", "I-y", "B-x", "I-y"]) == ["B-x", "I-x", "O", "B-y", "B-x", "B-y"]


def test_conditioning_without_its_tag_map_is_a_checkpoint_error(tiny_checkpoint, tmp_path):
    import shutil

    from mtst.errors import CheckpointError

    folder = tmp_path / "best"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config["tasks"][1]["condition_on"] = "intent"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="condition_on but no allowed_tags"):
        MultiTaskModel.from_pretrained(folder)


def test_tag_map_treats_a_tag_without_bio_prefix_as_its_own_type():
    train = [
        Example.from_words(["a", "b"], {"label": "x", "tags": ("LOC", "O")}),
        Example.from_words(["a", "b"], {"label": "y", "tags": ("DOC", "O")}),
    ]
    assert tags_by_sentence_label(train, "label", "tags") == {"x": ("LOC", "O"), "y": ("DOC", "O")}
