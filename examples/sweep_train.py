"""A stand-in training script for examples/sweep.yaml: it parses the options a sweep
passes (`--lr 0.001 --amp true ...`) and logs a made-up validation loss."""

from __future__ import annotations

import argparse
import math

import whirr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--amp", type=lambda s: s == "true", default=False)
    args = parser.parse_args()
    with whirr.init(config=vars(args), system_metrics=False) as run:
        # Best near lr=1e-2, dropout=0.2, 3 layers, adam.
        floor = (abs(math.log10(args.lr) + 2) * 0.3 + abs(args.dropout - 0.2)
                 + abs(args.layers - 3) * 0.1 + (0.2 if args.optimizer == "sgd" else 0.0))
        for epoch in range(args.epochs):
            val_loss = floor + 1.0 / (epoch + 1)
            run.log({"val_loss": val_loss}, step=epoch)
        run.summary({"val_loss": val_loss})


if __name__ == "__main__":
    main()
