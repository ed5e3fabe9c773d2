"""A toy experiment with known effects, for trying `whirr ablate` (and testing it).

    score = 10 + 2.0 * augment + (width / 64 - 1) * 1.0 + 0 * dropout
            + seed_noise (N(0, 1), the same for every condition of a replicate)
            + run_noise  (N(0, 0.2), different for every run)

So against a baseline of augment=false, width=64, dropout=0.1, the delta
`augment=true` moves the score by +2.0, `width=32` by -0.5 and `dropout=0.3` by 0.
The seed noise is five times the run noise: paired seeds cancel it.

    whirr ablate init toy -m score -r 6 --seed-base 100
    whirr ablate baseline toy augment=false width=64 dropout=0.1
    whirr ablate add toy augment=true -n augment
    whirr ablate add toy width=32 -n narrow
    whirr ablate add toy dropout=0.3 -n dropout
    whirr ablate run toy -- python examples/ablate_toy.py --seed {{seed}} --cfg {{cfg_path}}
    whirr worker --exit-when-empty
    whirr ablate rank toy
"""

from __future__ import annotations

import argparse
import json
import random

import whirr

TRUE_EFFECTS = {"augment": 2.0, "narrow": -0.5, "dropout": 0.0}


def score(cfg: dict, seed: int, condition: str) -> float:
    """The toy metric for one run."""
    seed_noise = random.Random(seed).gauss(0.0, 1.0)
    run_noise = random.Random(f"{seed}/{condition}").gauss(0.0, 0.2)
    augment = 2.0 if cfg.get("augment") else 0.0
    width = (cfg.get("width", 64) / 64 - 1) * 1.0
    return 10.0 + augment + width + 0.0 * cfg.get("dropout", 0.1) + seed_noise + run_noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--cfg", required=True, help="the JSON file `whirr ablate run` wrote")
    args = parser.parse_args()
    with open(args.cfg) as fh:
        cfg = json.load(fh)
    condition = cfg["__ablate__"]["condition"]
    with whirr.init(config=cfg, system_metrics=False, capture_git=False,
                    capture_pip=False) as run:
        value = score(cfg, args.seed, condition)
        run.log({"score": value}, step=0)
        run.summary({"score": value})
    print(f"{condition} seed={args.seed} score={value:.4f}")


if __name__ == "__main__":
    main()
