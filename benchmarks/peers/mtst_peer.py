"""mtst itself as a row of the peer table, run like the peers (mtst's own virtual environment).

    python benchmarks/peers/mtst_peer.py train --corpus atis --data-dir ../shared/data/atis --epochs 4 \
        --output runs/peers/mtst/atis
    python benchmarks/peers/mtst_peer.py speed --data-dir ../shared/data/atis --output runs/peers/mtst/atis

`train` runs `mtst train --config configs/CORPUS.yaml` (best dev checkpoint kept by mtst), then writes the
test predictions on the corpus's own words; `speed` times `Predictor.predict` on raw text, what users call.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peer_io import Stopwatch, command_line, folder_size_mb, machine, peak_rss_mb, record_speed, update_record  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def train(args) -> None:
    output = Path(args.output)
    config = args.config or str(ROOT / f"configs/{args.corpus}.yaml")
    command = ["mtst", "train", "--config", config, "--data-dir", args.data_dir]
    command += ["--output-dir", str(output / "run"), "--epochs", str(args.epochs), "--seed", str(args.seed)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    update_record(output, peer="mtst", corpus=args.corpus, command=command, machine_at_start=machine())
    with Stopwatch() as clock:
        subprocess.run([str(Path(sys.executable).parent / command[0]), *command[1:]], env=env, check=True)
    update_record(
        output,
        train_seconds=clock.seconds,
        train_peak_rss_mb=peak_rss_mb(),
        epochs=args.epochs,
        seed=args.seed,
        threads=args.threads,
        machine_at_end=machine(),
        model_size_mb=folder_size_mb(output / "run" / "best"),
    )
    write_test_predictions(output, args.data_dir)


def write_test_predictions(output: Path, data_dir: str) -> None:
    """Test predictions on the corpus's own words, through the model mtst evaluate scores."""
    from peer_io import write_predictions

    from mtst.data.formats.jointbert import read_jointbert
    from mtst.inference.runner import run_model
    from mtst.model.multitask import MultiTaskModel

    model = MultiTaskModel.from_pretrained(output / "run" / "best")
    examples = read_jointbert(Path(data_dir) / "test")
    predictions, _ = run_model(model, examples)
    intents = [p["intent"].label for p in predictions]
    tags = [p["slots"].tags for p in predictions]
    write_predictions(output / "predictions.jsonl", intents, tags)


def speed(args) -> None:
    import torch

    from mtst.inference.predictor import Predictor

    torch.set_num_threads(args.threads)
    predictor = Predictor.from_checkpoint(Path(args.output) / "run" / "best")
    predict = lambda batch: predictor.predict([" ".join(words) for words in batch])  # noqa: E731
    record_speed(args.output, predict, args.data_dir, args.limit, args.threads)


def main() -> None:
    parser, run, speed_parser = command_line(__doc__)
    run.add_argument("--corpus", required=True, choices=["atis", "snips"])
    run.add_argument("--epochs", type=int, required=True)
    run.add_argument("--seed", type=int, default=13)
    run.add_argument("--config", help="an mtst config file (default: configs/CORPUS.yaml)")
    args = parser.parse_args()
    train(args) if args.command == "train" else speed(args)


if __name__ == "__main__":
    main()
