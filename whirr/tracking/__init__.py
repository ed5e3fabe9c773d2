"""The tracking library: ``whirr.init()`` and ``Run`` for training scripts.

Modules: ``run`` (Run, init), ``metrics`` (the metrics.jsonl writer), ``system`` and
``gpus`` (system.jsonl), ``repro`` (git.json, diff.patch, requirements.txt), ``lifecycle``
(truthful ends on signals, exceptions and exit), ``location`` (where a run lives),
``recorder`` (the run events in the project's log).
"""

from whirr.tracking.run import Run, init

__all__ = ["Run", "init"]
