// Runs before plotly.js, which the browser spends a second or more compiling: starts the
// requests a page needs first, so their answers arrive while plotly.js still compiles.
// W.api (core.js) takes a started answer from here instead of asking again.
"use strict";

const Early = (() => {
  const body = document.body;
  const started = new Map();
  // Points per chart, about one per two pixel columns: the server draws each series down
  // to this many.
  const points = () => Math.max(200, Math.min(2000, Math.round(window.innerWidth / 2)));
  const seriesPath = (runId, kind, x) =>
    `/ui/runs/${encodeURIComponent(runId)}/series?${new URLSearchParams({ kind, x, points: points() })}`;

  function start(path) {
    const answer = fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    answer.catch(() => {});  // a failure is reported to whoever takes the answer
    started.set(path, answer);
  }
  if (body.dataset.page === "run" && body.dataset.subject) {
    const runId = body.dataset.subject;
    start(`/ui/runs/${encodeURIComponent(runId)}`);
    start(seriesPath(runId, "metrics", "step"));
  }

  // The answer started for path, given out once (later asks go to the server again).
  function take(path) {
    const answer = started.get(path);
    started.delete(path);
    return answer;
  }
  return { points, seriesPath, take };
})();
