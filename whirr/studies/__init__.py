"""What sweeps and ablation studies share: queuing jobs that belong to a study, the
submit options passed through to ``Jobs.submit``, and reading a run's metric."""
