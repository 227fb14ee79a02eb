"""benchmarks/fewshot.py: the K x seed x system grid resumes from its result file, summarises over seeds with
paired differences against SetFit, and stops in one line without SetFit's venv. A fake launcher stands in for
training (it writes what a peer script writes); one slow test runs the mtst systems for real on the tiny encoder."""

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import TOY_SENTENCES, write_joint_yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def fewshot(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # undone at teardown, with the peers folder fewshot adds
    import fewshot

    yield fewshot
    for name in ("fewshot", "paired", "score", "setfit_peer", "peer_io"):
        sys.modules.pop(name, None)


@pytest.fixture
def grid_argv(toy_data_dir, tmp_path) -> list[str]:
    config = tmp_path / "mtst.yaml"
    config.write_text("{}")  # never read: the fake launcher trains nothing
    setfit_python = tmp_path / "setfit-python"
    setfit_python.write_text("")
    argv = ["snips", "--data-dir", str(toy_data_dir), "--config", str(config), "--contrastive-config", str(config)]
    argv += ["--setfit-python", str(setfit_python), "--runs", str(tmp_path / "runs")]
    return [*argv, "--output", str(tmp_path / "fewshot.json"), "--systems", "setfit", "mtst"]


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


class FakeLauncher:
    """Writes what setfit_peer.py / mtst_peer.py write (gold intents; gold tags for mtst) and notes each launch:
    (K, seed, system), the command, and how many runs the result file held when it started."""

    def __init__(self, output: Path, fail: tuple = ()):
        self.output, self.fail = output, fail
        self.launched, self.commands, self.runs_on_file = [], [], []

    def __call__(self, command: list[str], log, env: dict) -> int:
        run, data = Path(option(command, "--output")), Path(option(command, "--data-dir"))
        shots = int(data.name.split("-")[0][1:])
        key = (shots, int(option(command, "--seed")), run.name)
        self.launched.append(key)
        self.commands.append(command)
        self.runs_on_file.append(len(json.loads(self.output.read_text())["runs"]) if self.output.is_file() else 0)
        assert env["OMP_NUM_THREADS"] == "1" and option(command, "--threads") == "1"
        if key in self.fail:
            return 1
        run.mkdir(parents=True)
        rows = [{"intent": intent} for _, _, intent in TOY_SENTENCES]
        if run.name != "setfit":
            rows = [{"intent": intent, "tags": tags.split()} for _, tags, intent in TOY_SENTENCES]
        (run / "predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        (run / "run.json").write_text(json.dumps({"train_seconds": 3.0, "train_peak_rss_mb": 100.0}))
        return 0


def test_fewshot_grid_trains_only_the_runs_its_result_file_lacks(fewshot, grid_argv, tmp_path, monkeypatch):
    output, runs = tmp_path / "fewshot.json", tmp_path / "runs" / "snips"
    fake = FakeLauncher(output)
    monkeypatch.setattr(fewshot, "launch", fake)
    fewshot.main([*grid_argv, "--shots", "1", "--seeds", "1"])
    assert fake.launched == [(1, 1, "setfit"), (1, 1, "mtst")]
    setfit, mtst = fake.commands
    assert setfit[0] == str(tmp_path / "setfit-python") and setfit[1].endswith("setfit_peer.py")
    assert mtst[1].endswith("mtst_peer.py") and option(mtst, "--epochs") == "20"
    assert option(mtst, "--config") == str(tmp_path / "mtst.yaml") and option(mtst, "--corpus") == "snips"
    # Both systems train on the one draw: K sentences of each intent, test whole.
    assert option(setfit, "--data-dir") == option(mtst, "--data-dir") == str(runs / "data" / "k1-s1")
    assert sorted((runs / "data" / "k1-s1" / "train" / "label").read_text().split()) == ["GetWeather", "PlayMusic"]
    assert len((runs / "data" / "k1-s1" / "test" / "label").read_text().split()) == len(TOY_SENTENCES)

    # A run folder with no row (killed mid-training) is cleared and trained again; finished runs are not.
    stale = runs / "k2-s1" / "mtst"
    stale.mkdir(parents=True)
    (stale / "half-written.bin").write_text("x")
    fake.launched.clear()
    fake.runs_on_file.clear()
    fewshot.main([*grid_argv, "--shots", "1", "2", "--seeds", "1", "2"])
    assert fake.launched == [(1, 2, "setfit"), (1, 2, "mtst"), (2, 1, "setfit"), (2, 1, "mtst")] + [
        (2, 2, "setfit"),
        (2, 2, "mtst"),
    ]
    assert fake.runs_on_file == [2, 3, 4, 5, 6, 7]  # the file is rewritten after every finished run
    assert not (stale / "half-written.bin").exists() and (stale / "predictions.jsonl").is_file()
    result = json.loads(output.read_text())
    assert [(row["shots"], row["seed"], row["system"]) for row in result["runs"]][:3] == [
        (1, 1, "setfit"),
        (1, 1, "mtst"),
        (1, 2, "setfit"),
    ]
    row = result["runs"][1]
    assert row["test"]["intent_accuracy"] == 1.0 and row["test"]["slot_f1"] == 1.0 and row["train_seconds"] == 3.0
    assert result["runs"][0]["test"]["slot_f1"] is None  # SetFit predicts intents only
    assert set(result["summary"]) == {"1", "2"} and result["summary"]["2"]["systems"]["mtst"]["seeds"] == [1, 2]

    # Rerun: nothing left to train, even with the runs folder gone; other epochs: nothing reused.
    fake.launched.clear()
    fewshot.main([*grid_argv, "--shots", "1", "2", "--seeds", "1", "2"])
    assert fake.launched == [] and json.loads(output.read_text())["runs"] == result["runs"]
    fewshot.main([*grid_argv, "--shots", "1", "--seeds", "1", "--epochs", "5"])
    assert fake.launched == [(1, 1, "setfit"), (1, 1, "mtst")]


def test_fewshot_grid_retries_a_failed_run_on_the_next_call(fewshot, grid_argv, tmp_path, monkeypatch):
    output = tmp_path / "fewshot.json"
    fake = FakeLauncher(output, fail=((1, 1, "mtst"),))
    monkeypatch.setattr(fewshot, "launch", fake)
    argv = [*grid_argv, "--shots", "1", "--seeds", "1", "2"]
    with pytest.raises(SystemExit, match=r"failed runs .*\n  K=1 seed 1 mtst: exit 1, see .*mtst.log"):
        fewshot.main(argv)
    assert [(row["seed"], row["system"]) for row in json.loads(output.read_text())["runs"]] == [
        (1, "setfit"),
        (2, "setfit"),
        (2, "mtst"),
    ]
    fake.launched.clear()
    fake.fail = ()
    fewshot.main(argv)
    assert fake.launched == [(1, 1, "mtst")]


def test_fewshot_grid_without_setfits_venv_says_how_to_make_it(fewshot, grid_argv, tmp_path, monkeypatch, capsys):
    fake = FakeLauncher(tmp_path / "fewshot.json")
    monkeypatch.setattr(fewshot, "launch", fake)
    argv = [*grid_argv, "--setfit-python", str(tmp_path / "nowhere" / "python")]
    with pytest.raises(SystemExit) as stopped:
        fewshot.main(argv)
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "make it with: bash benchmarks/peers/setup.sh setfit" in error
    assert fake.launched == [] and not (tmp_path / "fewshot.json").exists() and not (tmp_path / "runs").exists()
    fewshot.main([*argv[:-2], "--systems", "mtst", "--shots", "1", "--seeds", "1"])  # no SetFit, no venv needed
    assert fake.launched == [(1, 1, "mtst")]


def _row(system: str, seed: int, intent: float, slot_f1: float | None = None, wall: float = 60.0, shots: int = 8):
    sentence = None if slot_f1 is None else slot_f1 / 2
    test = {"intent_accuracy": intent, "slot_f1": slot_f1, "sentence_accuracy": sentence}
    return {"shots": shots, "seed": seed, "system": system, "wall_seconds": wall, "train_seconds": wall, "test": test}


def test_fewshot_summary_takes_mean_std_over_seeds_and_paired_differences(fewshot, tmp_path, capsys):
    rows = [
        _row("mtst", 13, 0.91, 0.5, wall=60),
        _row("mtst", 14, 0.91, 0.6, wall=120),
        _row("mtst", 15, 0.97, 0.7, wall=180),
        _row("setfit", 13, 0.90),
        _row("setfit", 14, 0.92),
        _row("setfit", 15, 0.94),
        _row("mtst-contrastive", 13, 0.93, 0.2),
        _row("mtst-contrastive", 14, 0.92, 0.2),
        _row("setfit", 13, 0.80, shots=16),  # K = 16: SetFit has one seed, mtst another; nothing to pair
        _row("mtst", 14, 0.85, 0.4, shots=16),
    ]
    summary = fewshot.summarise(rows)
    assert list(summary) == ["8", "16"]
    at_8 = summary["8"]
    assert list(at_8["systems"]) == ["setfit", "mtst", "mtst-contrastive"]
    setfit, mtst = at_8["systems"]["setfit"], at_8["systems"]["mtst"]
    assert setfit["intent_accuracy"] == pytest.approx({"mean": 92.0, "std": 2.0})
    assert "slot_f1" not in setfit and setfit["seeds"] == [13, 14, 15]
    assert mtst["intent_accuracy"] == pytest.approx({"mean": 93.0, "std": 12**0.5})
    assert mtst["slot_f1"] == pytest.approx({"mean": 60.0, "std": 10.0})
    assert mtst["sentence_accuracy"] == pytest.approx({"mean": 30.0, "std": 5.0})
    assert mtst["wall_seconds"] == pytest.approx({"mean": 120.0, "std": 60.0})
    pairs = {pair["name"]: pair for pair in at_8["paired"]}
    assert list(pairs) == ["mtst − setfit", "mtst-contrastive − setfit"]
    assert pairs["mtst − setfit"]["deltas"]["intent_accuracy"] == [1.0, -1.0, 3.0]
    assert pairs["mtst − setfit"]["intent_accuracy_difference"] == pytest.approx({"mean": 1.0, "std": 2.0})
    contrastive = pairs["mtst-contrastive − setfit"]  # seed 15 has no contrastive run: left out of the pair
    assert contrastive["seeds"] == [13, 14] and contrastive["deltas"]["intent_accuracy"] == [3.0, 0.0]
    assert summary["16"]["paired"] == []

    output = tmp_path / "fewshot.json"
    output.write_text(json.dumps({"runs": rows, "summary": summary}))
    fewshot.main(["snips", "--data-dir", str(tmp_path), "--output", str(output), "--markdown"])
    printed = capsys.readouterr().out
    assert "| 8 | setfit | 13, 14, 15 | 92.00 ± 2.00 | — | — | 1.0 ± 0.0 |" in printed
    assert "| 8 | mtst | 13, 14, 15 | 93.00 ± 3.46 | 60.00 ± 10.00 | 30.00 ± 5.00 | 2.0 ± 1.0 |" in printed
    assert "| 8 | mtst − setfit | 13, 14, 15 | +1.00 / -1.00 / +3.00 | +1.00 ± 2.00 |" in printed
    assert "| 8 | mtst-contrastive − setfit | 13, 14 | +3.00 / +0.00 | +1.50 ± 2.12 |" in printed
    assert "| 16 | mtst | 14 | 85.00 ± 0.00 |" in printed


@pytest.mark.slow
def test_fewshot_grid_trains_the_mtst_systems_for_real(fewshot, tiny_encoder_dir, toy_data_dir, tmp_path):
    """The real mtst_peer.py commands, one epoch of the tiny encoder: scored rows for both mtst systems."""
    config = write_joint_yaml(tmp_path / "tiny.yaml", tiny_encoder_dir, epochs=1)
    contrastive = write_joint_yaml(
        tmp_path / "tiny-contrastive.yaml", tiny_encoder_dir, epochs=1, contrastive={"task": "intent", "epochs": 1}
    )
    output = tmp_path / "fewshot.json"
    argv = ["snips", "--data-dir", str(toy_data_dir), "--shots", "2", "--seeds", "1", "--epochs", "1"]
    argv += ["--systems", "mtst", "mtst-contrastive", "--config", str(config), "--contrastive-config", str(contrastive)]
    fewshot.main([*argv, "--runs", str(tmp_path / "runs"), "--output", str(output)])
    result = json.loads(output.read_text())
    assert [row["system"] for row in result["runs"]] == ["mtst", "mtst-contrastive"]
    for row in result["runs"]:
        assert 0 <= row["test"]["intent_accuracy"] <= 1 and row["test"]["slot_f1"] is not None
        assert row["wall_seconds"] > 0 and row["train_seconds"] > 0
    assert result["settings"]["systems"] == ["mtst", "mtst-contrastive"] and "load_average_after" in result


class GoldLauncher(FakeLauncher):
    """Predicts the gold labels of whatever the run's data folder holds as its test split."""

    def __call__(self, command: list[str], log, env: dict) -> int:
        run, data = Path(option(command, "--output")), Path(option(command, "--data-dir")) / "test"
        self.launched.append((run.parent.name, run.name))
        run.mkdir(parents=True)
        intents, tags = (data / "label").read_text().split("\n")[:-1], (data / "seq.out").read_text().split("\n")[:-1]
        rows = [{"intent": intent, "tags": line.split()} for intent, line in zip(intents, tags, strict=True)]
        (run / "predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        (run / "run.json").write_text(json.dumps({"train_seconds": 3.0, "train_peak_rss_mb": 100.0}))
        return 0


def test_evaluate_on_dev_scores_the_dev_sentences_no_run_saw_and_keeps_apart_from_test(
    fewshot, grid_argv, tmp_path, monkeypatch, capsys
):
    output, runs = tmp_path / "fewshot.json", tmp_path / "runs" / "snips"
    fake = GoldLauncher(output)
    monkeypatch.setattr(fewshot, "launch", fake)
    fewshot.main([*grid_argv, "--shots", "1", "--seeds", "1", "--systems", "mtst", "--evaluate-on", "dev"])
    assert fake.launched == [("k1-s1-on-dev", "mtst")]
    folder = runs / "data" / "k1-s1-on-dev"
    drawn = set((folder / "dev" / "seq.in").read_text().splitlines())
    held_out = (folder / "test" / "seq.in").read_text().splitlines()
    assert len(drawn) == 2 and len(held_out) == len(TOY_SENTENCES) - 2 and not drawn & set(held_out)
    result = json.loads(output.read_text())
    [row] = result["runs"]
    assert "test" not in row and row["dev"]["intent_accuracy"] == 1.0
    assert result["summary"]["1"]["systems"]["mtst"]["intent_accuracy"]["mean"] == 100.0
    assert "Scored on dev" in capsys.readouterr().out
    default_output = fewshot.parse_args(["snips", "--data-dir", "d", "--evaluate-on", "dev"]).output
    assert default_output.name == "fewshot_snips_dev.json"  # never the test grid's file
    # The test grid does not reuse the dev grid's rows, nor its folders.
    fewshot.main([*grid_argv, "--shots", "1", "--seeds", "1", "--systems", "mtst"])
    assert fake.launched[1:] == [("k1-s1", "mtst")] and (runs / "data" / "k1-s1" / "test").is_dir()
