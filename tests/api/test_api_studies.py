"""The study routes (``/sweeps``, ``/ablations``) against a real server: what they record
and queue, what they answer, and every client mistake as a 4xx with a message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from server_process import ServerProcess

from whirr.client import AuthError, WhirrClient
from whirr.services.errors import InvalidRequest, InvalidState, NotFound

SWEEP = (
    "program: python train.py\nmetric: {name: acc, goal: max}\ntags: [nightly]\n"
    "submit: {priority: 3}\nparameters:\n  lr: [0.1, 0.01]\n  bs: [32]\n"
)


def test_a_sweep_is_recorded_queued_listed_resumed_and_cancelled(
    client: WhirrClient, tmp_path: Path
) -> None:
    queued = client.create_sweep(
        SWEEP, str(tmp_path), name="api-lr", source="s.yaml", options={"max_attempts": 1}
    )
    assert queued.message.startswith("Sweep api-lr: queued 2 job(s)")
    assert [j.name for j in queued.jobs] == ["api-lr-0", "api-lr-1"]
    assert [j.command_argv for j in queued.jobs][1] == [
        "python",
        "train.py",
        "--lr",
        "0.01",
        "--bs",
        "32",
    ]
    assert {(j.priority, j.max_attempts) for j in queued.jobs} == {(3, 1)}
    assert queued.jobs[0].tags == ["sweep:api-lr", "nightly"]
    sweep = client.get_sweep("api-lr")
    assert (sweep.metric, sweep.goal, sweep.state, sweep.source) == (
        "acc",
        "maximize",
        "active",
        "s.yaml",
    )
    assert sweep.submit_options == {"priority": 3, "max_attempts": 1}
    assert [(j.index, j.job_id, j.status, j.started) for j in sweep.jobs] == [
        (0, queued.jobs[0].id, "queued", False),
        (1, queued.jobs[1].id, "queued", False),
    ]
    assert "api-lr" in [s.name for s in client.sweeps()]
    assert client.resume_sweep("api-lr").jobs == []
    cancelled = client.cancel_sweep("api-lr")
    assert cancelled.cancelled == [j.id for j in queued.jobs]
    after = client.get_sweep("api-lr")
    assert (after.progress.cancelled, after.state) == (2, "finished")


def test_a_sweep_spec_may_be_a_json_object_and_random_sweeps_record_their_seed(
    client: WhirrClient, tmp_path: Path
) -> None:
    spec = {
        "program": ["echo", "x"],
        "method": "random",
        "max_runs": 3,
        "parameters": {"lr": {"distribution": "log_uniform", "min": 1e-4, "max": 1}},
    }
    first = client.create_sweep(spec, str(tmp_path), name="api-r", seed=5)
    again = client.create_sweep(spec, str(tmp_path), name="api-r2", seed=5)
    assert first.sweep.seed == 5
    assert [j.config for j in first.sweep.jobs] == [j.config for j in again.sweep.jobs]
    client.cancel_sweep("api-r")
    client.cancel_sweep("api-r2")


def test_sweep_mistakes_are_4xx_with_a_message(client: WhirrClient, tmp_path: Path) -> None:
    bad = "program: x\nparameters:\n  lr:\n    valuez: [1]\n"
    with pytest.raises(InvalidRequest, match=r"^bad\.yaml, line 4: parameters\.lr\.valuez"):
        client.create_sweep(bad, str(tmp_path), name="api-bad", source="bad.yaml")
    with pytest.raises(InvalidRequest, match="unknown field `gpu_count`"):
        client.create_sweep(SWEEP, str(tmp_path), name="api-bad", options={"gpu_count": 2})
    with pytest.raises(InvalidRequest, match="priority"):
        client.create_sweep(SWEEP, str(tmp_path), name="api-bad", options={"priority": "hi"})
    with pytest.raises(InvalidRequest, match="give the sweep a name"):
        client.create_sweep(SWEEP, str(tmp_path))
    with pytest.raises(InvalidRequest, match=r"\$\.name"):
        client.create_sweep(SWEEP, str(tmp_path), name="no spaces")
    huge = "program: x\nmethod: random\nmax_runs: 10001\nparameters: {a: [1]}\n"
    with pytest.raises(InvalidRequest, match="plans 10001 jobs; a server queues at most"):
        client.create_sweep(huge, str(tmp_path), name="api-bad")
    with pytest.raises(NotFound, match="no sweep named 'api-bad'"):
        client.get_sweep("api-bad")  # nothing was recorded by the refused requests
    client.create_sweep(SWEEP, str(tmp_path), name="api-twice")
    with pytest.raises(InvalidState, match="a sweep named 'api-twice' already exists"):
        client.create_sweep(SWEEP, str(tmp_path), name="api-twice")
    client.cancel_sweep("api-twice")
    with pytest.raises(NotFound):
        client.cancel_sweep("api-none")


def test_an_ablation_study_is_built_planned_and_run_on_the_server(
    client: WhirrClient, server: ServerProcess, tmp_path: Path
) -> None:
    study = client.create_ablation("api-toy", "score", replicates=2, seed_base=10)
    assert (study.name, study.metric, study.seed_base, study.members) == (
        "api-toy",
        "score",
        10,
        [],
    )
    study = client.set_ablation_baseline(
        "api-toy", {"lr": 0.1, "note": "text"}, files={"note": "note.txt"}
    )
    assert (study.baseline, study.baseline_files) == (
        {"lr": 0.1, "note": "text"},
        {"note": "note.txt"},
    )
    added = client.add_ablation_delta("api-toy", {"lr": 0.5}, delta="hot")
    assert ([d.name for d in added.ablation.deltas], added.replaced) == (["hot"], False)
    assert client.add_ablation_delta("api-toy", {"lr": 1.0}, delta="hot").replaced

    command = ["echo", "{{seed}}", "{{cfg_path}}"]
    cells = client.plan_ablation("api-toy", command)
    configs = server.data_dir / "ablations" / "api-toy" / "configs"
    assert [(c.condition, c.replicate, c.seed) for c in cells] == [
        ("baseline", 0, 10),
        ("hot", 0, 10),
        ("baseline", 1, 11),
        ("hot", 1, 11),
    ]
    assert cells[1].argv == ["echo", "10", str(configs / "hot-0.json")]
    assert not configs.exists()  # a plan writes nothing

    ran = client.run_ablation("api-toy", command, str(tmp_path), options={"priority": 2})
    assert ran.message.startswith("Study api-toy: queued 4 job(s)")
    assert [j.name for j in ran.jobs][:2] == ["api-toy-baseline-0", "api-toy-hot-0"]
    assert ran.jobs[1].tags == ["ablate:api-toy", "condition:hot"]
    assert {j.priority for j in ran.jobs} == {2}
    config = json.loads((configs / "hot-0.json").read_text())
    assert config == {
        "lr": 1.0,
        "note": "text",
        "__ablate__": {"ablation": "api-toy", "condition": "hot", "replicate": 0, "seed": 10},
    }
    assert config == ran.jobs[1].config
    study = client.get_ablation("api-toy")
    assert [(m.condition, m.replicate, m.status) for m in study.members][:2] == [
        ("baseline", 0, "queued"),
        ("hot", 0, "queued"),
    ]
    assert study.launches[0].command == command
    assert client.run_ablation("api-toy", command, str(tmp_path)).jobs == []
    with pytest.raises(InvalidState, match="different command"):
        client.run_ablation("api-toy", ["true"], str(tmp_path), replicates=3)
    assert "api-toy" in [s.name for s in client.ablations()]
    client.cancel_all_queued()


def test_ablation_mistakes_are_4xx_with_a_message(client: WhirrClient, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no ablation study named 'api-none'"):
        client.get_ablation("api-none")
    with pytest.raises(NotFound):
        client.add_ablation_delta("api-none", {"x": 1})
    client.create_ablation("api-s", "acc")
    with pytest.raises(InvalidState, match="already exists"):
        client.create_ablation("api-s", "acc")
    with pytest.raises(InvalidRequest, match="`baseline` names the baseline itself"):
        client.add_ablation_delta("api-s", {"x": 1}, delta="baseline")
    with pytest.raises(InvalidRequest, match="at least one key=value"):
        client.set_ablation_baseline("api-s", {})
    with pytest.raises(InvalidState, match="has no deltas yet"):
        client.run_ablation("api-s", ["true"], str(tmp_path))
    client.add_ablation_delta("api-s", {"x": 1})
    with pytest.raises(InvalidRequest, match="unknown field `bogus`"):
        client.run_ablation("api-s", ["true"], str(tmp_path), options={"bogus": 1})
    with pytest.raises(InvalidRequest, match=r"\$\.replicates"):
        client.create_ablation("api-z", "acc", replicates=0)


def test_study_routes_need_the_token_and_are_in_the_openapi_document(
    server: ServerProcess, client: WhirrClient
) -> None:
    with WhirrClient(server.url, token="") as anonymous, pytest.raises(AuthError, match="401"):
        anonymous.sweeps()
    paths = client.openapi()["paths"]
    for path in (
        "/api/v1/sweeps",
        "/api/v1/sweeps/{name}/cancel",
        "/api/v1/ablations",
        "/api/v1/ablations/{name}/run",
        "/api/v1/sweeps/{name}/report",
        "/api/v1/ablations/{name}/ranking",
    ):
        assert path in paths


def test_reports_and_rankings_are_worked_out_by_the_server(
    client: WhirrClient, tmp_path: Path
) -> None:
    client.create_sweep(SWEEP, str(tmp_path), name="api-report")
    report = client.sweep_report("api-report")
    assert (report.metric, report.goal, report.state, report.best) == (
        "acc",
        "maximize",
        "active",
        None,
    )
    assert [(j.index, j.status, j.value) for j in report.jobs] == [
        (0, "queued", None),
        (1, "queued", None),
    ]
    assert client.sweep_report("api-report", "loss", "minimize").metric == "loss"
    with pytest.raises(InvalidRequest, match="'goal' must be minimize or maximize"):
        client.sweep_report("api-report", goal="max")
    with pytest.raises(NotFound, match="no sweep named 'nope'"):
        client.sweep_report("nope")
    client.create_ablation("api-rank", "acc", replicates=2, seed_base=7)
    ranking = client.ablation_ranking("api-rank")
    assert (ranking.name, ranking.metric, ranking.seed_base, ranking.effects) == (
        "api-rank",
        "acc",
        7,
        [],
    )
    with pytest.raises(NotFound, match="no ablation study named 'nope'"):
        client.ablation_ranking("nope")
