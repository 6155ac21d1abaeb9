"""Render a plotly figure (or any HTML page) to PNG with headless Chromium, for docs and reviews."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import plotly.graph_objects as go

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chrome_options(width: int = 1440, height: int = 900):
    """Selenium options for headless Debian Chromium (as root it needs --no-sandbox)."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    return options


def screenshot(url: str, out: Path, width: int = 1440, height: int = 900, wait_ms: int = 2000) -> None:
    """Screenshot `url` at width × height into `out` (PNG)."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                "chromium",
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--virtual-time-budget={wait_ms}",
                f"--screenshot={out.resolve()}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def figure_png(spec: dict | go.Figure, out: Path, width: int = 900, height: int = 520) -> None:
    """Write a figure (a plotly spec or Figure) as a PNG of width × height pixels."""
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "fig.html"
        fig = go.Figure(spec).update_layout(
            width=width, height=height, template="none"
        )  # plotly.js's own look, as in the app
        fig.write_html(html, include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
        screenshot(html.as_uri(), out, width, height)
