"""Headless Chromium for the dashboard's browser tests, benchmark and screenshots:
Debian's ``chromium`` and ``chromium-driver`` driven by selenium."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
)


def find(candidates: tuple[str, ...], name: str) -> str | None:
    """The first existing path of ``candidates``, else ``name`` on PATH."""
    for path in candidates:
        if Path(path).exists():
            return path
    return shutil.which(name)


def available() -> bool:
    """True when Chromium, its driver and selenium are all installed."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return bool(find(CHROMIUM, "chromium") and find(DRIVER, "chromedriver"))


@contextmanager
def chromium(width: int = 1440, height: int = 900, webgl: bool = False) -> Iterator[Any]:
    """A fresh headless Chromium (its own profile directory), closed afterwards; ``webgl``
    turns on software WebGL (parallel coordinates need it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="whirr-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = find(CHROMIUM, "chromium") or "chromium"
    for flag in FLAGS:
        if not (webgl and flag == "--disable-gpu"):
            options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    if webgl:
        options.add_argument("--enable-unsafe-swiftshader")
        options.add_argument("--use-angle=swiftshader")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=find(DRIVER, "chromedriver") or "chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(
    driver: Any, condition: Callable[[Any], Any], timeout: float = 20.0, message: str = ""
) -> Any:
    """Poll ``condition(driver)`` until truthy; its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message)


def console_errors(driver: Any) -> list[str]:
    """Severe messages the page logged (script errors, CSP violations, failed loads)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
