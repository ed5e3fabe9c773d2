"""Take the dashboard screenshots of docs/img/ from the demo project:

.venv/bin/python tests/dashboard/screenshots.py docs/img [NAME ...]

(names such as ``run run-dark`` take only those.)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard import demo
from dashboard.browser import chromium, wait_for
from dashboard.process import DashboardProcess

SHOTS = [
    ("overview", "/", "light", 1000),
    ("queue", "/queue", "light", 900),
    ("runs", "/runs", "light", 760),
    ("run", "/runs/job-5", "light", 1560),
    ("compare", "/compare?runs=job-1,job-2,job-3,job-5&metric=train/loss&smooth=0.6", "dark", 1780),
    # A failed run: why it ended, at the top.
    ("run-dark", "/runs/job-4", "dark", 1300),
]


def main(out: Path, only: list[str]) -> None:
    """Build the demo project, serve it, and save one PNG per page (or those in ``only``)."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "resnet-sweeps"
        root.mkdir()
        demo.build(root)
        dash = DashboardProcess(root)
        try:
            for name, path, theme, height in SHOTS:
                if only and name not in only:
                    continue
                with chromium(width=1400, height=height, webgl=True) as driver:
                    driver.get(dash.url + "/static/theme.js")
                    driver.execute_script(f"localStorage.setItem('whirr-theme', '{theme}')")
                    driver.get(dash.url + path)
                    wait_for(driver, lambda d: not d.find_elements("css selector", ".loading"))
                    # plotly.js, not the static previews drawn while it compiles.
                    wait_for(
                        driver,
                        lambda d: not d.find_elements("css selector", "svg.chart-preview"),
                        timeout=60,
                    )
                    time.sleep(2.0)  # charts and live state settle
                    driver.save_screenshot(str(out / f"dashboard-{name}.png"))
                    print(f"saved {out / f'dashboard-{name}.png'}")
        finally:
            dash.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"), sys.argv[2:])
