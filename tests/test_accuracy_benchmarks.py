"""The accuracy and ablation benchmark scripts run end to end (tiny encoder, toy data, one epoch)."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import write_joint_yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def tiny_yaml(tiny_encoder_dir, tmp_path) -> Path:
    return write_joint_yaml(tmp_path / "tiny.yaml", tiny_encoder_dir, epochs=1)


@pytest.fixture
def benchmarks_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    for name in (
        "accuracy",
        "conditioned_decoding",
        "ablations",
        "accuracy_grid",
        "paired_seeds",
        "active_learning",
        "settle_grid",
        "multi_intent",
    ):
        sys.modules.pop(name, None)


@pytest.mark.slow
def test_accuracy_script_trains_missing_seeds_and_reports_mean_and_std(
    tiny_yaml, toy_data_dir, tmp_path, monkeypatch, capsys, benchmarks_on_path
):
    import accuracy

    output = tmp_path / "accuracy.json"
    argv = ["atis", "--data-dir", str(toy_data_dir), "--config", str(tiny_yaml), "--seeds", "1", "2"]
    argv += ["--runs", str(tmp_path / "runs"), "--jobs", "2", "--threads", "1", "--output", str(output)]
    monkeypatch.setattr("sys.argv", ["accuracy.py", *argv])
    accuracy.main()
    result = json.loads(output.read_text())
    assert result["seeds"] == [1, 2] and result["published"]["slot_f1"] == 96.1
    for field in ("mean_std", "mean_std_conditioned", "mean_std_dev"):
        for key in ("intent", "slot_f1", "sentence"):
            stats = result[field][key]
            assert len(stats["values"]) == 2 and 0 <= stats["mean"] <= 100 and stats["std"] >= 0
    assert [row["seed"] for row in result["per_seed"]] == [1, 2]
    assert (tmp_path / "runs" / "tiny" / "seed-2" / "best" / "model.safetensors").is_file()
    assert "| BERT-base, published (Chen et al. 2019) | 97.5 | 96.1 | 88.2 |" in capsys.readouterr().out
    # A second call reuses the finished runs instead of training again.
    (tmp_path / "runs" / "tiny" / "seed-1.log").unlink()
    accuracy.main()
    assert not (tmp_path / "runs" / "tiny" / "seed-1.log").exists()


def test_ablation_script_changes_one_option_per_variant(
    tiny_yaml, toy_data_dir, tmp_path, monkeypatch, capsys, benchmarks_on_path
):
    import ablations

    output = tmp_path / "ablations.json"
    argv = ["atis", "--data-dir", str(toy_data_dir), "--config", str(tiny_yaml), "--epochs", "1", "--threads", "1"]
    argv += [
        "--max-train-examples",
        "6",
        "--variants",
        "baseline",
        "crf",
        "llrd-0.8",
        "crf-entity-weight-1",
        "--runs",
        str(tmp_path / "runs"),
        "--output",
        str(output),
    ]
    monkeypatch.setattr("sys.argv", ["ablations.py", *argv])
    ablations.main()
    result = json.loads(output.read_text())
    assert [row["variant"] for row in result["variants"]] == ["baseline", "crf", "llrd-0.8", "crf-entity-weight-1"]
    assert all(0.0 <= row["dev"]["slot_f1"] <= 1.0 for row in result["variants"])
    runs = tmp_path / "runs" / "tiny-e1-n6-s13"
    crf = json.loads((runs / "crf" / "best" / "config.json").read_text())
    assert [task["type"] for task in crf["tasks"]] == ["sentence", "token"] and crf["tasks"][1]["crf"] is True
    assert "crf" not in crf["tasks"][0]  # a sentence task has no such option
    assert yaml.safe_load((runs / "llrd-0.8" / "config.yaml").read_text())["strategy"] == {
        "name": "llrd",
        "decay": 0.8,
        "word_embeddings": "full",
    }
    assert yaml.safe_load((runs / "baseline" / "config.yaml").read_text())["train"]["max_train_examples"] == 6
    both = yaml.safe_load((runs / "crf-entity-weight-1" / "config.yaml").read_text())
    assert both["train"]["entity_sampler_weight"] == 1.0 and both["tasks"][1]["crf"] is True
    assert "| crf | CRF layer on the slot head |" in capsys.readouterr().out


def test_intent_slot_coverage_counts_entities_conditioning_must_lose(tiny_yaml, toy_data_dir, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS.parent / "scripts"))
    import intent_slot_coverage

    test = toy_data_dir / "test"
    (test / "seq.in").write_text("weather by queen\nplay music by queen\n")
    (test / "seq.out").write_text("O O B-artist\nO O O B-artist\n")
    (test / "label").write_text("GetWeather\nPlayMusic\n")
    intent_slot_coverage.main(str(tiny_yaml), str(toy_data_dir))
    assert "1 of 2 test entities (50.00 %), in 1 of 2 sentences" in capsys.readouterr().out


@pytest.mark.slow
def test_accuracy_grid_trains_each_variant_and_seed_once_and_ranks_on_dev(
    tiny_yaml, toy_data_dir, tmp_path, capsys, benchmarks_on_path
):
    import accuracy_grid

    output, runs = tmp_path / "grid.json", tmp_path / "runs"
    argv = ["atis", "--data-dir", str(toy_data_dir), "--config", str(tiny_yaml), "--epochs", "1"]
    argv += ["--max-train-examples", "6", "--seeds", "1", "2", "--jobs", "2", "--threads", "1"]
    argv += ["--variants", "baseline", "cap+pooling-mean+entity-weight-1"]
    argv += ["--define", "cap:token.class_weight_cap=3,train.batch_size=2", "--runs", str(runs)]
    argv += ["--output", str(output), "--poll-seconds", "0.2"]
    accuracy_grid.main(argv)
    result = json.loads(output.read_text())
    combination = "cap+pooling-mean+entity-weight-1"
    assert list(result["variants"]) == ["baseline", combination]
    assert sorted(result["ranked_on_dev"]["variants"]) == sorted(result["variants"])
    assert [(row["variant"], row["seed"]) for row in result["runs"]][:2] == [("baseline", 1), ("baseline", 2)]
    for row in result["runs"]:
        assert set(row["dev"]) == set(row["test"]) >= {"intent.accuracy", "slots.precision", "slots.recall"}
        assert {"slots.f1", "sentence_accuracy"} <= set(row["test"]) and row["epochs_run"] == 1
    stats = result["variants"][combination]["test"]["slots.f1"]
    assert stats["n"] == 2 and 0 <= stats["mean"] <= 100 and stats["std"] >= 0
    assert result["machine"]["threads"] == 1 and "load_average_after" in result
    grid = runs / "tiny-e1-n6"
    combined = yaml.safe_load((grid / combination / "config.yaml").read_text())
    assert combined["tasks"][1]["subtoken_pooling"] == "mean" and combined["tasks"][1]["class_weight_cap"] == 3
    assert combined["train"]["entity_sampler_weight"] == 1.0 and combined["train"]["batch_size"] == 2
    assert combined["tasks"][0]["label_smoothing"] == 0.0 and combined["train"]["patience"] == 1
    run = grid / combination / "seed-2"
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["seed"] == 2
    assert json.loads((run / "best" / "config.json").read_text())["tasks"][1]["subtoken_pooling"] == "mean"
    baseline = json.loads((grid / "baseline" / "seed-1" / "best" / "config.json").read_text())
    assert baseline["tasks"][1]["subtoken_pooling"] == "first_last"  # the library default
    assert f"| {combination} | 2 |" in capsys.readouterr().out
    # Finished runs are read, not retrained; an interrupted one is resumed.
    (grid / "baseline" / "seed-1.log").unlink()
    accuracy_grid.main(argv)
    assert not (grid / "baseline" / "seed-1.log").exists()
    interrupted = grid / "baseline" / "seed-1"
    (interrupted / "summary.json").unlink()
    (interrupted / "training_state").mkdir(exist_ok=True)
    assert accuracy_grid.train_command(grid / "baseline" / "config.yaml", interrupted, 1)[-2:] == [
        "--resume",
        str(interrupted),
    ]
    # A lost runs folder costs nothing that the result file recorded; a changed setting trains again.
    recorded = json.loads(output.read_text())["runs"]
    shutil.rmtree(runs)
    accuracy_grid.main(argv)
    assert (
        json.loads(output.read_text())["runs"] == recorded
        and not runs.joinpath("tiny-e1-n6", "baseline", "seed-1").exists()
    )
    changed = [*argv[:-4], "--define", "cap:token.class_weight_cap=4,train.batch_size=2", *argv[-4:]]
    assert accuracy_grid.pending_runs(_with_records(accuracy_grid, changed))[0][:2] == (combination, 1)


def _with_records(accuracy_grid, argv):
    args = accuracy_grid.parse_args(argv)
    args.recorded = accuracy_grid.recorded_runs(args)
    return args


def test_accuracy_grid_refuses_unknown_variants_and_bad_definitions(benchmarks_on_path):
    import accuracy_grid

    with pytest.raises(SystemExit, match="unknown variant 'nope'"):
        accuracy_grid.parse_args(["atis", "--data-dir", "x", "--variants", "baseline+nope"])
    with pytest.raises(SystemExit, match="every setting needs KEY=VALUE"):
        accuracy_grid.parse_args(["atis", "--data-dir", "x", "--define", "v:train.epochs"])


def test_accuracy_grid_sets_a_kinds_option_on_that_kinds_tasks_only(benchmarks_on_path):
    import accuracy_grid

    raw = {"tasks": [{"name": "intent", "type": "multilabel"}, {"name": "slots", "type": "token"}], "train": {}}
    settings = accuracy_grid.parse_definitions(["exact-sets:multilabel.tune_for=accuracy,token.crf=false"])
    accuracy_grid.apply_settings(raw, settings["exact-sets"])
    assert raw["tasks"] == [
        {"name": "intent", "type": "multilabel", "tune_for": "accuracy"},
        {"name": "slots", "type": "token", "crf": False},
    ]


def _seed_rows(values: dict[int, float]) -> dict:
    """A stand-in for accuracy.py's result: every metric of seed S equal to values[S], std 1 point."""
    scores = {key: None for key in ("intent", "slot_f1", "sentence")}
    rows = [
        {"seed": seed, "dev": dict.fromkeys(scores, v), "test": dict.fromkeys(scores, v)} for seed, v in values.items()
    ]
    stats = {"mean": 100 * sum(values.values()) / len(values), "std": 1.0}
    return {"per_seed": rows, "mean_std": dict.fromkeys(scores, stats), "mean_std_dev": dict.fromkeys(scores, stats)}


def test_paired_seeds_compares_the_same_seeds_and_judges_by_one_std(benchmarks_on_path, capsys):
    import paired_seeds

    before = _seed_rows({13: 0.90, 14: 0.92, 15: 0.94})
    after = _seed_rows({13: 0.91, 14: 0.93, 15: 0.935, 16: 0.5})  # seed 16 has no partner: left out
    result = paired_seeds.compare(before, after)
    assert result["seeds"] == [13, 14, 15]
    dev = result["dev"]["slot_f1"]
    assert dev["paired_deltas"] == [1.0, 1.0, -0.5]
    assert dev["after"] == 81.88 and dev["within_one_std"] is False  # the mean counts seed 16
    worse = paired_seeds.compare(before, _seed_rows({13: 0.905, 14: 0.915, 15: 0.935}))
    assert worse["dev"]["intent"]["within_one_std"] is True
    print(paired_seeds.table(worse))
    assert "| dev | intent | 92.00 ± 1.00 | 91.83 ± 1.00 | +0.50, -0.50, -0.50 | yes |" in capsys.readouterr().out


@pytest.mark.slow
def test_active_learning_simulation_adds_each_strategys_picks_and_resumes(
    tiny_yaml, toy_data_dir, tmp_path, benchmarks_on_path
):
    import active_learning

    output, runs = tmp_path / "al.json", tmp_path / "runs"

    def simulate(rounds: int) -> dict:
        argv = ["toy", "--data-dir", str(toy_data_dir), "--config", str(tiny_yaml), "--strategies", "random", "joint"]
        argv += ["--seeds", "1", "--start", "3", "--batch", "2", "--rounds", str(rounds), "--epochs", "1"]
        active_learning.main([*argv, "--runs", str(runs), "--output", str(output), "--full-slot-f1", "50"])
        return json.loads(output.read_text())

    result = simulate(rounds=1)
    for strategy in ("random", "joint"):
        rows = result["curves"][strategy]["1"]
        assert [row["labelled"] for row in rows] == [3, 5]
        assert rows[1]["labelled_indices"][:3] == rows[0]["labelled_indices"]  # the start is kept, picks added
        assert len(set(rows[1]["labelled_indices"])) == 5 and 0 <= rows[1]["test"]["slot_f1"] <= 100
    starts = [result["curves"][strategy]["1"][0]["labelled_indices"] for strategy in ("random", "joint")]
    assert starts[0] == starts[1]  # every strategy starts from the same random sentences
    assert set(result["labelled_needed"]) == {"95% of 50.0", "98% of 50.0"}
    assert output.with_suffix(".png").stat().st_size > 0
    # A rerun reads the finished rounds back; one more round first retrains the lost last checkpoint.
    shutil.rmtree(runs)
    assert simulate(rounds=1)["curves"] == result["curves"] and not runs.exists()
    assert [row["labelled"] for row in simulate(rounds=2)["curves"]["joint"]["1"]] == [3, 5, 7]


@pytest.mark.slow
def test_active_learning_strategies_run_apart_and_combine_without_training(
    tiny_yaml, toy_data_dir, tmp_path, benchmarks_on_path
):
    import active_learning

    runs = tmp_path / "runs"
    common = ["toy", "--data-dir", str(toy_data_dir), "--config", str(tiny_yaml), "--seeds", "1", "--start", "3"]
    common += ["--batch", "2", "--rounds", "1", "--epochs", "1", "--runs", str(runs)]
    for strategy in ("random", "joint"):  # as two slots would run them
        active_learning.main([*common, "--strategies", strategy, "--output", str(tmp_path / f"{strategy}.json")])
    apart = {s: json.loads((tmp_path / f"{s}.json").read_text())["curves"][s] for s in ("random", "joint")}
    shutil.rmtree(runs)
    combined = tmp_path / "al.json"
    argv = [*common, "--strategies", "random", "joint", "--output", str(combined), "--full-slot-f1", "50"]
    active_learning.main([*argv, "--read-also", str(tmp_path / "random.json"), str(tmp_path / "joint.json")])
    result = json.loads(combined.read_text())
    assert result["curves"] == apart and not runs.exists()  # read back, nothing trained
    assert set(result["labelled_needed"]["95% of 50.0"]) == {"random", "joint"}


@pytest.mark.slow
def test_settle_grid_runs_every_datasets_grid_at_once(tiny_yaml, tmp_path, benchmarks_on_path):
    import settle_grid
    from tests.conftest import TOY_SENTENCES, write_jointbert

    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("toy_a", "toy_b"):
        (configs / f"{name}.yaml").write_text(tiny_yaml.read_text())
        for split in ("train", "dev", "test"):
            write_jointbert(tmp_path / "data" / name / split, TOY_SENTENCES)
    argv = ["--data-root", str(tmp_path / "data"), "--datasets", "toy_a", "toy_b", "--config-dir", str(configs)]
    argv += ["--variants", "baseline", "crf+entity-weight-1", "--seeds", "1", "--jobs", "2", "--epochs", "1"]
    argv += ["--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results"), "--tag", "tiny"]
    settle_grid.main(argv)
    for name in ("toy_a", "toy_b"):
        result = json.loads((tmp_path / "results" / f"grid_{name}_tiny.json").read_text())
        assert sorted(result["ranked_on_dev"]["variants"]) == ["baseline", "crf+entity-weight-1"]


# A toy MixSNIPS: utterances joined by "and", their intents `#`-joined in alphabetical order. Test has an intent
# (BookRestaurant) and a tag (B-restaurant) that train never shows, as MixATIS test does.
MULTI_TRAIN = [
    ("play queen and what is the weather", "O B-artist O O O O O", "GetWeather#PlayMusic"),
    ("weather in paris and play jazz", "O O B-city O O B-genre", "GetWeather#PlayMusic"),
    ("play music by queen", "O O O B-artist", "PlayMusic"),
    ("will it rain in berlin", "O O O O B-city", "GetWeather"),
    ("put on some jazz and is it sunny", "O O O B-genre O O O O", "GetWeather#PlayMusic"),
    ("weather for new york", "O O B-city I-city", "GetWeather"),
]
MULTI_TEST = [
    ("play queen and will it rain in paris", "O B-artist O O O O O B-city", "GetWeather#PlayMusic"),
    ("book a table at nandos and play jazz", "O O O O B-restaurant O O B-genre", "BookRestaurant#PlayMusic"),
    ("is it sunny in berlin", "O O O O B-city", "GetWeather"),
]


@pytest.fixture
def multi_intent_data(tmp_path) -> Path:
    from tests.conftest import write_jointbert

    for split, rows in (("train", MULTI_TRAIN), ("dev", MULTI_TRAIN[:3]), ("test", MULTI_TEST)):
        write_jointbert(tmp_path / "mix" / split, rows)
    return tmp_path / "mix"


def _multi_intent_yaml(tiny_yaml: Path, intent_type: str) -> Path:
    config = yaml.safe_load(tiny_yaml.read_text())
    config["tasks"][0] = {"name": "intent", "type": intent_type, "field": "label", "separator": "#"}
    if intent_type != "multilabel":
        del config["tasks"][0]["separator"]
    path = tiny_yaml.with_name(f"tiny-{intent_type}.yaml")
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_multi_intent_script_reports_the_three_numbers_over_seeds_beside_the_published_rows(
    tiny_yaml, multi_intent_data, tmp_path, capsys, benchmarks_on_path
):
    import multi_intent

    output, runs = tmp_path / "multi.json", tmp_path / "runs"
    argv = [
        "mixsnips",
        "--data-dir",
        str(multi_intent_data),
        "--config",
        str(_multi_intent_yaml(tiny_yaml, "multilabel")),
    ]
    argv += ["--seeds", "1", "2", "--runs", str(runs), "--output", str(output)]
    multi_intent.main(argv)
    result = json.loads(output.read_text())
    assert result["published"]["AGIF (Qin et al. 2020)"] == {"overall": 74.2, "intent": 95.1, "slot_f1": 94.2}
    assert result["metric_keys"] == {"overall": "sentence_accuracy", "intent": "intent.accuracy", "slot_f1": "slots.f1"}
    for split in ("mean_std", "mean_std_dev"):
        for number in ("overall", "intent", "slot_f1"):
            stats = result[split][number]
            assert len(stats["values"]) == 2 and 0 <= stats["mean"] <= 100 and stats["std"] >= 0
    # Each seed's numbers are its run's own test metrics, under the benchmark's names.
    for row in result["per_seed"]:
        summary = json.loads((runs / "tiny-multilabel" / f"seed-{row['seed']}" / "summary.json").read_text())
        assert row["test"] == {
            "overall": summary["test"]["sentence_accuracy"],
            "intent": summary["test"]["intent.accuracy"],
            "slot_f1": summary["test"]["slots.f1"],
        }
        assert 0 < row["threshold"] < 1 and row["test"]["overall"] <= row["test"]["intent"]
        curve = row["dev_curve"]
        assert [point["epoch"] for point in curve] == list(range(1, row["epochs_run"] + 1))
        assert curve[row["best_epoch"] - 1]["slot_f1"] == row["dev"]["slot_f1"] and curve[0]["seconds"] > 0
    # The test-only intent and tag sit in one utterance: 2 of 3 can be right, and none crashed.
    assert result["unreachable"] == {
        "test_utterances": 3,
        "with_an_intent_not_in_train": 1,
        "with_a_tag_not_in_train": 1,
        "overall_ceiling": pytest.approx(200 / 3),
        "intent_ceiling": pytest.approx(200 / 3),
    }
    assert all(row["test"]["intent"] <= 2 / 3 + 1e-9 for row in result["per_seed"])
    assert set(result["above_on_all_three"]) == set(result["published"])
    printed = capsys.readouterr().out
    assert "| SLIM (Cai et al. 2022, BERT), published | 84.0 | 97.2 | 96.5 |" in printed
    assert "| mixsnips test (2 seeds) | overall acc | intent acc | slot F1 |" in printed
    # Without the result file, a second call reads the finished runs instead of training again.
    first = json.loads(output.read_text())
    output.unlink()
    (runs / "tiny-multilabel" / "seed-1.log").unlink()
    multi_intent.main(argv)
    assert not (runs / "tiny-multilabel" / "seed-1.log").exists()
    # A run a stopped session left half done continues from its training state instead of starting over.
    output.unlink()
    interrupted = runs / "tiny-multilabel" / "seed-2"
    (interrupted / "summary.json").unlink()
    (interrupted / "training_state").mkdir(exist_ok=True)
    import accuracy

    command = accuracy.train_command(multi_intent.parse_args(argv), 2)
    assert command[-3:] == ["train", "--resume", str(interrupted)]
    multi_intent.main(argv)
    assert (interrupted / "summary.json").is_file()
    # Each seed is in the result file as soon as it ends: with runs/ gone, a rerun reads them back from it.
    shutil.rmtree(runs)
    multi_intent.main(argv)
    assert not runs.exists()
    assert json.loads(output.read_text())["per_seed"][0] == first["per_seed"][0]


def test_multi_intent_script_reads_a_grid_result_file_without_training(
    tiny_yaml, multi_intent_data, tmp_path, capsys, benchmarks_on_path
):
    import multi_intent

    config = _multi_intent_yaml(tiny_yaml, "multilabel")

    def grid_row(variant: str, seed: int, value: float) -> dict:
        metrics = {"sentence_accuracy": value / 2, "intent.accuracy": value, "slots.f1": value, "intent.threshold": 0.4}
        return {"variant": variant, "seed": seed, "best_epoch": 3, "epochs_run": 3, "dev": metrics, "test": metrics}

    runs = [grid_row("baseline", 13, 0.6), grid_row("baseline", 14, 0.8), grid_row("crf", 13, 0.1)]
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"settings": {"config": str(config), "epochs": 3}, "runs": runs}))
    output = tmp_path / "multi.json"
    argv = ["mixatis", "--data-dir", str(multi_intent_data), "--from-grid", str(grid), "--seeds", "13", "14"]
    multi_intent.main([*argv, "--runs", str(tmp_path / "runs"), "--output", str(output)])
    result = json.loads(output.read_text())
    assert result["epochs"] == 3 and result["config"] == str(config) and not (tmp_path / "runs").exists()
    assert result["mean_std"]["intent"]["values"] == [60.0, 80.0] and result["mean_std"]["overall"]["mean"] == 35.0
    assert result["mean_std"]["intent"]["std"] == pytest.approx(14.142, abs=1e-3)
    assert [row["threshold"] for row in result["per_seed"]] == [0.4, 0.4]
    assert result["above_on_all_three"] == dict.fromkeys(multi_intent.PUBLISHED["mixatis"], False)
    assert f"| mtst (`{config}`, 3 epochs) | 35.00 ± 7.07 | 70.00 ± 14.14 | 70.00 ± 14.14 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"no finished 'crf' run for seeds \[14\]"):
        multi_intent.main([*argv, "--variant", "crf", "--output", str(output)])


def test_multi_intent_script_refuses_a_single_intent_config_before_training(
    tiny_yaml, multi_intent_data, tmp_path, benchmarks_on_path
):
    import multi_intent

    argv = ["mixatis", "--data-dir", str(multi_intent_data), "--config", str(_multi_intent_yaml(tiny_yaml, "sentence"))]
    with pytest.raises(SystemExit, match=r"needs one multilabel task and one token task; intent \(sentence\)"):
        multi_intent.main([*argv, "--runs", str(tmp_path / "runs"), "--output", str(tmp_path / "out.json")])
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out.json").exists()


CONDITIONED_ROWS = [
    ("play queen now", "O B-artist O", "PlayMusic"),
    ("play the beatles", "O B-artist I-artist", "PlayMusic"),
    ("weather in paris", "O O B-city", "GetWeather"),
    ("rain in new york", "O O B-city I-city", "GetWeather"),
]


def test_conditioned_decoding_keeps_each_intents_tags_and_leaves_the_checkpoint_alone(
    tiny_checkpoint, tmp_path, benchmarks_on_path, capsys
):
    import conditioned_decoding
    from mtst.evaluation.metrics import evaluate
    from mtst.model.multitask import MultiTaskModel
    from tests.conftest import write_jointbert

    data = tmp_path / "data"
    for split in ("train", "dev", "test"):
        write_jointbert(data / split, CONDITIONED_ROWS)
    before = {path.name: path.read_bytes() for path in tiny_checkpoint.iterdir() if path.is_file()}
    model = MultiTaskModel.from_pretrained(tiny_checkpoint)
    train = conditioned_decoding.read_jointbert(data / "train")
    seen = {"PlayMusic": {"O", "B-artist", "I-artist"}, "GetWeather": {"O", "B-city", "I-city"}}
    with torch.no_grad():  # every sentence PlayMusic, every word B-city: tags PlayMusic never showed in train
        model.heads["intent"].classifier.bias[model.tasks["intent"].labels.index("PlayMusic")] += 100.0
        model.heads["slots"].classifier.bias[model.tasks["slots"].labels.index("B-city")] += 100.0
    _, plain = evaluate(model, train)
    assert any(set(prediction["slots"].tags) - seen[prediction["intent"].label] for prediction in plain)
    _, predictions = evaluate(conditioned_decoding.conditioned(model, train), train)
    for prediction in predictions:
        assert set(prediction["slots"].tags) <= seen[prediction["intent"].label] == seen["PlayMusic"]
    output = tmp_path / "conditioned.json"
    conditioned_decoding.main([str(tiny_checkpoint), "--data-dir", str(data), "--output", str(output)])
    result = json.loads(output.read_text())
    assert [set(run) for run in result["runs"]] == [{"checkpoint", "plain", "conditioned"}]
    assert set(result["mean_std"]["conditioned"]["dev"]) == {
        "intent",
        "slot_precision",
        "slot_recall",
        "slot_f1",
        "sentence",
    }
    assert "| conditioned | test |" in capsys.readouterr().out
    assert {path.name: path.read_bytes() for path in tiny_checkpoint.iterdir() if path.is_file()} == before


def test_conditioned_decoding_refuses_a_folder_that_is_no_checkpoint(tmp_path, benchmarks_on_path):
    import conditioned_decoding

    with pytest.raises(SystemExit, match="not a checkpoint"):
        conditioned_decoding.main([str(tmp_path), "--data-dir", str(tmp_path)])
