"""Loss and metric curves as a PNG."""

from __future__ import annotations

from pathlib import Path

# Figures are built with the object-oriented API (no pyplot), so no global backend is set or needed.
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mtst.files import atomic_file


def plot_curves(history: list[dict], tasks: dict, path: str | Path) -> None:
    """Left: per-task train and dev loss; right: per-task dev main metric and sentence accuracy."""
    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(11, 4))
    loss_axis, metric_axis = figure.subplots(1, 2)
    for name, task in tasks.items():
        loss_axis.plot(epochs, [row["train_loss"].get(name) for row in history], marker="o", label=f"{name} train")
        loss_axis.plot(
            epochs, [row["dev"].get(f"{name}.loss") for row in history], marker="s", ls="--", label=f"{name} dev"
        )
        key = f"{name}.{task.MAIN_METRIC}"
        metric_axis.plot(epochs, [row["dev"].get(key) for row in history], marker="o", label=f"dev {key}")
    metric_axis.plot(
        epochs, [row["dev"].get("sentence_accuracy") for row in history], marker="^", label="dev sentence_accuracy"
    )
    loss_axis.set(title="loss", xlabel="epoch")
    metric_axis.set(title="dev metrics", xlabel="epoch", ylim=(0, 1.02))
    for axis in (loss_axis, metric_axis):
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_file(path) as tmp:
        figure.savefig(tmp, dpi=110)
