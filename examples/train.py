"""A tiny "training" script tracked by whirr: pure Python, finishes in about a second.

Run it directly (``python examples/train.py --lr 0.05``) or queue it
(``whirr submit -- python examples/train.py``); either way ``whirr runs`` and
``whirr show <run id>`` then show its config, summary and metrics.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from pathlib import Path

import whirr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    # Fit y = 3x + 1 by SGD on a noisy sample: small enough to run in a blink.
    data = [(x, 3 * x + 1 + rng.gauss(0, 0.1)) for x in (rng.uniform(-1, 1) for _ in range(64))]
    w, b = 0.0, 0.0

    with whirr.init(name=args.name, config=vars(args), tags=["example"],
                    system_metrics_interval=0.5) as run:
        best = math.inf
        for epoch in range(args.epochs):
            for x, y in data:
                err = (w * x + b) - y
                w -= args.lr * err * x
                b -= args.lr * err
            loss = sum(((w * x + b) - y) ** 2 for x, y in data) / len(data)
            best = min(best, loss)
            run.log({"loss": loss, "w": w, "b": b}, step=epoch)
            time.sleep(0.05)  # pretend each epoch takes a while
        run.summary({"best_loss": best, "w": w, "b": b})
        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / "model.txt"
            model.write_text(f"w={w}\nb={b}\n")
            run.save_artifact(model)
        print(f"{run.run_id}: best loss {best:.5f} (w={w:.3f}, b={b:.3f})")


if __name__ == "__main__":
    main()
