"""Hooks that send a training framework's metrics to a whirr run.

One module per framework, each importing its framework when imported itself (so
``import whirr.integrations`` costs nothing and needs none of them):

- ``whirr.integrations.keras``: ``WhirrCallback`` for ``model.fit`` (Keras 3, any backend);
- ``whirr.integrations.xgboost``: ``WhirrCallback`` for ``xgboost.train`` and ``xgboost.cv``;
- ``whirr.integrations.lightgbm``: ``WhirrCallback`` for ``lightgbm.train``;
- ``whirr.integrations.transformers``: ``WhirrCallback``, a Hugging Face ``TrainerCallback``;
- ``whirr.integrations.lightning``: ``WhirrLogger``, a PyTorch Lightning logger.

Each logs the framework's metrics at the framework's step, records its hyperparameters as
the run's config and its final values as the run's summary. Given ``run=``, a hook logs
to that run; otherwise it starts one with ``whirr.init()``, which inside a job a worker
runs attaches to the job's run. See ``docs/integrations.md``.
"""
