"""The run page's data and writes without a browser: keys kept in the order a run first
logged them (row by row, through polars, through the column cache), one row count per
series answer, and run management through the dashboard's POSTs: only from its own
origin with its CSRF token, behind the server's sign-in, through a remote dashboard, and
never deleting a run that still runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_process import ServerProcess

from dashboard import run_page_project
from dashboard.demo import write_metrics
from dashboard.process import DashboardProcess
from whirr.dashboard import column_cache, fast
from whirr.dashboard.series import Columns, read_new_lines

LOGGED = ["epoch", "train/loss", "train/acc", "global_step", "val/loss", "lr"]


def test_keys_keep_the_order_the_run_logged_them(tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    write_metrics(small, run_page_project.ordered_rows(20))
    columns = Columns()
    read_new_lines(small, columns)  # under fast.MIN_BYTES: msgspec, row by row
    assert columns.logged_keys == LOGGED
    assert columns.keys == sorted(LOGGED)  # the sorted listing (compare, tables) stays

    big = tmp_path / "big.jsonl"
    rows = run_page_project.ordered_rows(6000)
    write_metrics(big, rows)
    assert big.stat().st_size >= fast.MIN_BYTES  # polars parses it
    parsed = Columns()
    read_new_lines(big, parsed)
    assert parsed.logged_keys == LOGGED

    # The column cache gives the same order back (it used to store the names sorted).
    cache = tmp_path / "big.npz"
    column_cache.save_columns(cache, big, parsed)
    restored = Columns()
    assert column_cache.load(cache, big, restored)
    assert restored.logged_keys == LOGGED and restored.rows == len(rows)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardProcess, dict]]:
    root = tmp_path_factory.mktemp("manage") / "proj"
    root.mkdir()
    ids = run_page_project.build(root)
    proc = DashboardProcess(root)
    yield proc, ids
    proc.stop()


def test_a_series_answer_has_one_row_count_for_its_series_and_last_values(
    local: tuple[DashboardProcess, dict],
) -> None:
    dash, ids = local
    with dash.client() as c:
        answer = c.get(f"/ui/runs/{ids['ordered']}/series", params={"points": 50}).json()
    assert [s["key"] for s in answer["series"]] == LOGGED
    assert answer["rows"] == 60 and {s["rows"] for s in answer["series"]} == {60}
    assert answer["last"]["train/loss"] == pytest.approx(2.0 / 60)


def test_a_running_run_is_not_deleted_and_writes_need_the_pages_token(
    local: tuple[DashboardProcess, dict],
) -> None:
    dash, ids = local
    with dash.client() as c:
        token = dash.csrf(c)
        same = {"X-CSRF-Token": token, "Origin": dash.url}
        path = f"/ui/runs/{ids['managed2']}/rename"
        assert c.post(path, json={"name": "x"}).status_code == 403
        evil = {"X-CSRF-Token": token, "Origin": "http://evil.example"}
        assert c.post(path, json={"name": "x"}, headers=evil).status_code == 403
        assert c.post(path, json={"name": ""}, headers=same).status_code == 422
        both_empty = c.post(f"/ui/runs/{ids['managed2']}/tags", json={}, headers=same)
        assert both_empty.status_code == 422
        running = c.post(f"/ui/runs/{ids['live']}/delete", headers=same)
        assert running.status_code == 409, running.text
        assert c.get(f"/ui/runs/{ids['live']}").status_code == 200
        assert ids["live_dir"].exists()
        assert c.get(f"/ui/runs/{ids['managed2']}").json()["run"]["name"] == "to manage 2"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("manage-server")))
    yield proc
    proc.stop()


def api_post(server: ServerProcess, path: str, body: dict) -> None:
    httpx.post(
        f"{server.url}/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    ).raise_for_status()


def direct_run(server: ServerProcess, run_id: str) -> None:
    """A direct run recorded through the API, as a script with WHIRR_SERVER_URL starts one."""
    api_post(server, "/runs", {"run_id": run_id, "name": "first", "tags": ["a"]})


def api_run(server: ServerProcess, run_id: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/api/v1/runs/{run_id}",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )


def test_run_management_behind_the_servers_sign_in(server: ServerProcess) -> None:
    run_id = "local-20240501-120000-srv001"
    direct_run(server, run_id)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        # Not signed in: refused before anything else is looked at.
        assert c.post(f"/ui/runs/{run_id}/rename", json={"name": "x"}).status_code == 401
        assert c.post("/login", data={"token": server.token}).status_code == 303
        html = c.get(f"/runs/{run_id}").text
        token = html.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        ours = {"X-CSRF-Token": token, "Origin": server.url, "Sec-Fetch-Site": "same-origin"}
        # Signed in is not enough: the page's token, from the page's own origin.
        assert c.post(f"/ui/runs/{run_id}/rename", json={"name": "x"}).status_code == 403
        cross = {**ours, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        assert (
            c.post(f"/ui/runs/{run_id}/rename", json={"name": "x"}, headers=cross).status_code
            == 403
        )
        assert api_run(server, run_id).json()["name"] == "first"

        def post(what: str, body: dict | None = None) -> dict:
            resp = c.post(f"/ui/runs/{run_id}/{what}", json=body, headers=ours)
            assert resp.status_code == 200, resp.text
            return resp.json()  # type: ignore[no-any-return]

        assert post("rename", {"name": "second"})["run"]["name"] == "second"
        assert post("tags", {"add": ["b"], "remove": ["a"]})["run"]["tags"] == ["b"]
        assert post("note", {"text": "why"})["run"]["notes"] == "why"
        assert post("note", {"text": "more", "append": True})["run"]["notes"] == "why\n\nmore"
        assert post("archive")["run"]["archived"] is True
        assert post("unarchive")["run"]["archived"] is False
        run = api_run(server, run_id).json()
        assert (run["name"], run["tags"], run["archived"]) == ("second", ["b"], False)
        # The run has not ended: delete is refused; once it has, the run is gone.
        assert c.post(f"/ui/runs/{run_id}/delete", headers=ours).status_code == 409
        api_post(server, f"/runs/{run_id}/finish", {"status": "completed"})
        assert post("delete")["run_id"] == run_id
        assert api_run(server, run_id).status_code == 404


def test_a_remote_dashboard_manages_runs_through_the_api(
    server: ServerProcess, tmp_path: Path
) -> None:
    run_id = "local-20240501-120000-srv002"
    direct_run(server, run_id)
    dash = DashboardProcess(
        tmp_path, "--server", server.url, env={"WHIRR_TOKEN": server.token or ""}
    )
    try:
        with dash.client() as c:
            ours = {"X-CSRF-Token": dash.csrf(c), "Origin": dash.url}
            renamed = c.post(f"/ui/runs/{run_id}/rename", json={"name": "far"}, headers=ours)
            assert renamed.status_code == 200, renamed.text
            tagged = c.post(f"/ui/runs/{run_id}/tags", json={"add": ["x"]}, headers=ours)
            assert tagged.json()["run"]["tags"] == ["a", "x"]
        assert api_run(server, run_id).json()["name"] == "far"
    finally:
        dash.stop()
