"""Why intent accuracy moves when the slot recipe changes: each task's loss and gradient on the shared encoder,
and the intent mix the entity sampler feeds, per variant.

python benchmarks/task_gradients.py --config configs/atis.yaml --data-dir ../shared/data/atis \\
    --checkpoint baseline=runs/grid/atis-e3/baseline/seed-13/best \\
    --checkpoint crf+entity-weight-1=runs/grid/atis-e3/crf+entity-weight-1/seed-13/best --batches 20

For each checkpoint (a trained run's best/, beside the run's config.yaml), at the checkpoint and at the start of
that run (the pretrained encoder, fresh heads, the run's config): over `--batches` train batches drawn as that
run's sampler draws them, the mean loss of each task, the L2 norm of its gradient on the encoder's parameters
(a backward pass per task), and the cosine between the two tasks' encoder gradients. And, from the data alone,
how far the sampler's intent mix is from train's (total variation) at each `entity_sampler_weight`.
Writes benchmarks/results/task_gradients_DATASET.json.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from pathlib import Path

import torch

from machine import started_record, write_result
from mtst.config import load_config
from mtst.data import load_corpora
from mtst.data.loaders import bears_entities, build_loaders
from mtst.model.multitask import MultiTaskModel


def sampler_intent_shift(corpus, model, weights: list[float], field: str) -> dict[str, float]:
    """Total variation distance between train's intent mix and the mix the entity sampler draws."""
    tasks = list(model.tasks.values())
    train = corpus.splits.train
    intents = [ex.annotations.get(field) for ex in train]
    plain = Counter(intents)
    shifts = {}
    for weight in weights:
        drawn = Counter()
        for intent, example in zip(intents, train, strict=True):
            drawn[intent] += weight if bears_entities(tasks, example) else 1.0
        total = sum(drawn.values())
        shifts[str(weight)] = 0.5 * sum(abs(drawn[i] / total - plain[i] / len(train)) for i in plain)
    return shifts


def encoder_gradient(model, loss: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    grads = [p.grad.flatten() for p in model.encoder.parameters() if p.grad is not None]
    return torch.cat(grads) if grads else torch.zeros(1)


def measure(model, loader, batches: int) -> dict:
    rows = []
    model.train()
    for index, batch in enumerate(loader):
        if index == batches:
            break
        output = model(**batch)
        grads = {name: encoder_gradient(model, loss) for name, loss in output.losses.items()}
        row = {f"{name}.loss": loss.item() for name, loss in output.losses.items()}
        row |= {f"{name}.encoder_grad_norm": float(grad.norm()) for name, grad in grads.items()}
        if len(grads) == 2:
            first, second = grads.values()
            row["gradient_cosine"] = float(torch.nn.functional.cosine_similarity(first, second, dim=0))
        rows.append(row)
    return {key: statistics.mean(row[key] for row in rows if key in row) for key in rows[0]}


def measure_run(path: Path, data_dir: Path, corpus, batches: int) -> dict:
    """A run's best/ (its config.yaml beside it) at its start and at the checkpoint; a config alone at its start."""
    trained = path.is_dir()
    run_config = load_config(path.parent / "config.yaml" if trained else path, **{"data.dir": str(data_dir)})
    cfg = run_config.train
    entry: dict = {"path": str(path), "entity_sampler_weight": cfg.entity_sampler_weight}
    for moment in ("at_start", "at_checkpoint") if trained else ("at_start",):
        torch.manual_seed(cfg.seed)
        if moment == "at_start":
            model = MultiTaskModel.from_config(run_config, corpus.splits)
        else:
            model = MultiTaskModel.from_pretrained(path)
        [loader] = build_loaders(cfg, model, [corpus])
        model.fit_heads(loader.dataset)
        entry[moment] = measure(model, loader, batches)
    sentence = next(task for task in model.tasks.values() if task.type == "sentence")
    weights = [1.0, cfg.entity_sampler_weight]
    entry["sampler_intent_shift"] = sampler_intent_shift(corpus, model, weights, sentence.field)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--checkpoint", action="append", required=True, help="NAME=PATH: a run's best/ or a config")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = started_record(args)
    config = load_config(args.config, **{"data.dir": str(args.data_dir)})
    [corpus] = load_corpora(config)
    result["checkpoints"] = {}
    for spec in args.checkpoint:
        name, _, path = spec.partition("=")
        result["checkpoints"][name] = measure_run(Path(path), args.data_dir, corpus, args.batches)
        print(name, result["checkpoints"][name], flush=True)
    output = args.output or Path("benchmarks/results") / f"task_gradients_{args.config.stem}.json"
    write_result(result, output)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
