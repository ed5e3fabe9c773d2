"""Every page and JSON endpoint of ``whirr dashboard`` over a real project, and its guards."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard.demo import write_metrics
from dashboard.process import DashboardProcess
from whirr.project import Project

Ids = tuple[Path, dict[str, Any]]


@pytest.mark.parametrize("path", ["/", "/queue", "/runs", "/compare", "/runs/job-1"])
def test_every_page_is_an_html_shell_with_guards(dashboard: DashboardProcess, path: str) -> None:
    with dashboard.client() as c:
        resp = c.get(path)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert resp.headers["x-frame-options"] == "DENY"
    # Not no-referrer: under it a browser's form posts say "Origin: null" (refused).
    assert resp.headers["referrer-policy"] == "same-origin"
    assert 'name="csrf-token"' in resp.text and "/static/core.js" in resp.text
    assert ("plotly.min.js" in resp.text) == (path in ("/compare", "/runs/job-1"))


def test_a_run_page_resolves_a_prefix_and_escapes_its_name(
    dashboard: DashboardProcess, project: Ids
) -> None:
    with dashboard.client() as c:
        resp = c.get("/runs/local-2024")
        missing = c.get("/runs/no-such-run")
    assert resp.status_code == 200
    assert f'data-subject="{project[1]["local_run"]}"' in resp.text
    assert "notebook &lt;b&gt;probe&lt;/b&gt;" in resp.text and "<b>probe" not in resp.text
    assert missing.status_code == 404 and "no run" in missing.text


def test_overview_json(dashboard: DashboardProcess, project: Ids) -> None:
    with dashboard.client() as c:
        d = c.get("/ui/overview").json()
    assert d["status"]["running"] == 1 and d["status"]["queued"] >= 3
    assert [w["id"] for w in d["workers"]] == ["gpu-box-1"]
    assert d["workers"][0]["current_job_id"] == project[1]["running_job"]
    assert [j["id"] for j in d["running"]] == [project[1]["running_job"]]
    assert len(d["recent_runs"]) == 7


def test_queue_json_lists_running_first_then_queued_then_ended(
    dashboard: DashboardProcess, project: Ids
) -> None:
    with dashboard.client() as c:
        d = c.get("/ui/queue").json()
    statuses = [j["status"] for j in d["active"]]
    assert statuses[0] == "running" and set(statuses[1:]) == {"queued"}
    ended = {j["id"]: j["status"] for j in d["ended"]}
    assert ended[project[1]["jobs"]["failed"]] == "failed"
    assert ended[project[1]["jobs"]["cancelled"]] == "cancelled"


def test_runs_table_filters_sorts_and_pages(dashboard: DashboardProcess) -> None:
    with dashboard.client() as c:
        d = c.get("/ui/runs", params={"sort": "config.lr", "order": "asc", "limit": 3}).json()
        failed = c.get("/ui/runs", params={"status": "failed"}).json()
        text = c.get("/ui/runs", params={"q": "notebook"}).json()
        bad = c.get("/ui/runs", params={"order": "sideways"})
    assert d["total"] == 7 and len(d["rows"]) == 3
    assert [r["config"]["lr"] for r in d["rows"]] == [0.001, 0.003, 0.01]
    assert "lr" in d["columns"]["config"] and "best_val_loss" in d["columns"]["summary"]
    assert [r["name"] for r in failed["rows"]] == ["resnet-sweep-3"]
    assert text["matched"] == 1
    assert bad.status_code == 422 and "order" in bad.json()["detail"]


def test_run_detail_and_series(dashboard: DashboardProcess) -> None:
    with dashboard.client() as c:
        d = c.get("/ui/runs/job-1").json()
        s = c.get("/ui/runs/job-1/series", params={"points": 50}).json()
        sys_ = c.get("/ui/runs/job-1/series", params={"kind": "system", "x": "time"}).json()
        one = c.get(
            "/ui/runs/job-1/series", params={"keys": "val/loss", "method": "lttb", "points": 20}
        ).json()
        bad = c.get("/ui/runs/job-1/series", params={"x": "banana"})
    assert d["run"]["config"]["lr"] == 0.001 and d["job"]["id"] == 1
    assert d["config_flat"]["data.augment"] is True
    assert d["metrics"]["keys"] == ["train/acc", "train/loss", "val/loss"]
    assert d["metrics"]["rows"] == 300 and "train/loss" in d["metrics"]["last"]
    assert [a["path"] for a in d["artifacts"]] == ["model.pt"]
    # Where the files are, as ``whirr show`` says it: a project's own.
    where = d["files_location"]
    assert (where["mode"], where["warnings"]) == ("local", [])
    assert where["line"] == f"local ({d['run']['run_dir']})"
    assert "cpu_percent" in d["system"]["keys"]
    by_key = {x["key"]: x for x in s["series"]}
    assert by_key["train/loss"]["total"] == 300 and len(by_key["train/loss"]["x"]) <= 52
    assert by_key["val/loss"]["total"] == 60
    assert sys_["series"] and sys_["series"][0]["x"][0] == 0.0
    assert [x["key"] for x in one["series"]] == ["val/loss"] and len(one["series"][0]["x"]) == 20
    assert bad.status_code == 422


def test_log_tail_and_offsets(dashboard: DashboardProcess, project: Ids) -> None:
    log = Project(project[0]).run_dir("job-6") / "output.log"
    with dashboard.client() as c:
        first = c.get("/ui/runs/job-6/log").json()
        assert first["text"].startswith("epoch 0") and first["offset"] == log.stat().st_size
        with log.open("a", encoding="utf-8") as fh:
            fh.write("héllo ✓\n")
        more = c.get("/ui/runs/job-6/log", params={"offset": first["offset"]}).json()
    assert more["text"] == "héllo ✓\n" and not more["ended"]


def test_artifact_download_and_no_escape(dashboard: DashboardProcess) -> None:
    with dashboard.client() as c:
        ok = c.get("/ui/runs/job-1/artifacts/model.pt")
        escape = c.get("/ui/runs/job-1/artifacts/..%2F..%2Fwhirr.db")
        missing = c.get("/ui/runs/job-1/artifacts/nope.bin")
    assert ok.status_code == 200 and ok.content.startswith(b"\x00weights")
    assert "attachment" in ok.headers["content-disposition"]
    assert escape.status_code in (404, 422) and missing.status_code == 404


def test_compare_json(dashboard: DashboardProcess) -> None:
    with dashboard.client() as c:
        d = c.get("/ui/compare", params={"runs": "job-1,job-2,job-5"}).json()
        s = c.get(
            "/ui/compare/series",
            params={"runs": "job-1,job-2", "key": "train/loss", "x": "time", "points": 100},
        ).json()
        nokey = c.get("/ui/compare/series", params={"runs": "job-1"})
    assert [r["id"] for r in d["runs"]] == ["job-1", "job-2", "job-5"]
    differing = {row["key"] for row in d["config_diff"] if row["differs"]}
    assert {"lr", "depth", "optimizer", "data.augment"} <= differing
    assert {"key": "batch_size", "values": [128, 128, 128], "differs": False} in d["config_diff"]
    assert d["config_diff"][0]["differs"]  # differences first
    assert "train/loss" in d["metric_keys"] and "best_val_loss" in d["summary_keys"]
    assert [x["run"] for x in s["series"]] == ["job-1", "job-2"]
    assert all(len(x["x"]) <= 102 for x in s["series"])
    assert nokey.status_code == 422


def test_static_files_and_plotly_are_served_gzipped_with_etags(dashboard: DashboardProcess) -> None:
    with dashboard.client() as c:
        plotly = c.get("/static/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"})
        again = c.get(
            "/static/vendor/plotly.min.js", headers={"If-None-Match": plotly.headers["etag"]}
        )
        css = c.get("/static/dashboard.css")
        nope = c.get("/static/../conftest.py")
        nope2 = c.get("/static/secret.py")
    assert plotly.status_code == 200 and plotly.headers["content-encoding"] == "gzip"
    assert b"plotly.js" in plotly.content[:200]
    assert again.status_code == 304
    assert css.headers["content-type"].startswith("text/css")
    assert nope.status_code == 404 and nope2.status_code == 404


def test_pages_link_fingerprinted_files_that_browsers_keep(dashboard: DashboardProcess) -> None:
    with dashboard.client() as c:
        html = c.get("/runs/job-1").text
        scripts = re.findall(r'<script src="(/static/[^"]+)"', html)
        plotly = re.findall(r'data-plotly="([^"]+)"', html)
        linked = c.get(plotly[0], headers={"Accept-Encoding": "gzip"})
        bare = c.get("/static/vendor/plotly.min.js")
        stale = c.get("/static/core.js?v=0000000000")
    # early.js starts the chart's requests first; plotly.js is not a script of the page,
    # nor preloaded: charts.js loads it once previews of the charts are drawn.
    assert [s.split("?")[0] for s in scripts] == [
        "/static/theme.js",
        "/static/early.js",
        "/static/core.js",
        "/static/charts.js",
        "/static/preview.js",
        "/static/run.js",
    ]
    assert "preload" not in html
    assert len(plotly) == 1 and plotly[0].startswith("/static/vendor/plotly.min.js?v=")
    assert all("?v=" in s for s in scripts)
    assert linked.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert len(linked.content) > 3_000_000  # httpx decompressed the gzip
    assert bare.headers["cache-control"] == stale.headers["cache-control"] == "no-cache"


def test_posts_need_the_csrf_token_and_the_same_origin(
    dashboard: DashboardProcess, project: Ids
) -> None:
    job = project[1]["queued_jobs"][0]
    with dashboard.client() as c:
        token = dashboard.csrf(c)
        assert c.post(f"/ui/jobs/{job}/cancel").status_code == 403
        stale = c.post(f"/ui/jobs/{job}/cancel", headers={"X-CSRF-Token": "0" * 64})
        assert stale.status_code == 403
        evil = c.post(
            f"/ui/jobs/{job}/cancel",
            headers={"X-CSRF-Token": token, "Origin": "http://evil.example"},
        )
        assert evil.status_code == 403
        assert c.get("/ui/queue").json()["active"][1]["status"] == "queued"
        ok = c.post(
            f"/ui/jobs/{job}/cancel",
            headers={
                "X-CSRF-Token": token,
                "Origin": dashboard.url,
                "Sec-Fetch-Site": "same-origin",
            },
        )
        assert ok.status_code == 200 and ok.json()["message"] == f"Cancelled job #{job}"
        again = c.post(f"/ui/jobs/{job}/cancel", headers={"X-CSRF-Token": token})
        assert again.status_code == 409 and "already ended" in again.json()["detail"]
        retry = c.post(f"/ui/jobs/{job}/retry", headers={"X-CSRF-Token": token})
        assert retry.status_code == 200
        new_id = retry.json()["job_id"]
        assert c.get("/ui/queue").json()["active"][-1]["id"] == new_id
        assert c.get(f"/ui/jobs/{job}/cancel").status_code == 405


def test_a_foreign_host_header_is_refused(dashboard: DashboardProcess) -> None:
    # DNS rebinding: evil.example resolving to 127.0.0.1 must not reach the dashboard.
    with dashboard.client() as c:
        assert c.get("/", headers={"Host": "evil.example"}).status_code == 403
        local = c.get("/ui/overview", headers={"Host": f"localhost:{dashboard.port}"})
        assert local.status_code == 200


def test_login_is_a_no_op_without_a_token(dashboard: DashboardProcess) -> None:
    with dashboard.client() as c:
        resp = c.get("/login", params={"next": "//evil.example/x"})
    assert resp.status_code == 302 and resp.headers["location"] == "/"


def test_the_stream_sends_changes_and_new_metric_rows(
    dashboard: DashboardProcess, project: Ids
) -> None:
    root, ids = project
    run_id = ids["running_run"]
    with dashboard.client() as c:
        head = c.get("/ui/overview").json()["head"]
    seen: list[str] = []

    def changed(lines: list[str]) -> bool:
        return any(x.startswith("data: [[") and "job.finished" in x for x in lines)

    def grew(lines: list[str]) -> bool:
        return any(f'"run":"{run_id}","rows":101' in x for x in lines)

    def listen() -> None:
        params: dict[str, str | int] = {"after": head, "runs": run_id}
        with httpx.stream("GET", f"{dashboard.url}/ui/stream", params=params, timeout=30) as r:
            for line in r.iter_lines():
                seen.append(line)
                if changed(seen) and grew(seen):
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(1.0)
    write_metrics(
        Project(root).run_dir(run_id) / "metrics.jsonl",
        [{"step": 99_990, "train/loss": 0.01}],
        start_idx=100,
    )
    with dashboard.client() as c:
        token = dashboard.csrf(c)
        c.post(f"/ui/jobs/{ids['queued_jobs'][1]}/cancel", headers={"X-CSRF-Token": token})
    thread.join(timeout=20)
    assert changed(seen) and grew(seen), "\n".join(seen)
