"""Opening a report in a real browser: headless Chromium (Debian's package).

Chromium loads a copy of ``index.html`` with a small script appended that lists the images that
failed to load, and we read the list back from the DOM it dumps; a second run takes a screenshot
of the page itself. Without Chromium on the machine these tests are skipped (and say why).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHECK_SCRIPT = """<script>
window.addEventListener("load", () => {
  const broken = [...document.images]
    .filter((img) => !(img.complete && img.naturalWidth > 0))
    .map((img) => img.getAttribute("src").slice(0, 80));
  document.body.setAttribute("data-broken", JSON.stringify(broken));
  document.body.setAttribute("data-images", String(document.images.length));
});
</script>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(self, executable: str, profile: Path) -> None:
        self.executable = executable
        self.profile = profile

    def _run(self, *args: str) -> str:
        command = [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        return done.stdout

    def images(self, index: Path) -> tuple[int, list[str]]:
        """(number of images, sources of those that did not load) on the page."""
        page = index.read_text(encoding="utf-8")
        check = index.with_name("_browser_check.html")
        check.write_text(page.replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")
        try:
            dom = self._run("--virtual-time-budget=10000", "--dump-dom", check.as_uri())
        finally:
            check.unlink()
        count = re.search(r'data-images="(\d+)"', dom)
        broken = re.search(r'data-broken="([^"]*)"', dom)
        assert count and broken, "the page never finished loading in Chromium"
        return int(count.group(1)), json.loads(broken.group(1).replace("&quot;", '"'))

    def screenshot(self, index: Path, out: Path) -> np.ndarray:
        self._run(f"--screenshot={out}", "--window-size=1280,1600", index.as_uri())
        import matplotlib.image

        return matplotlib.image.imread(out)

    def check_report(self, index: Path, min_images: int) -> None:
        """Every image on the page loads, there are at least ``min_images``, and it is not blank."""
        count, broken = self.images(index)
        assert broken == [], f"images that did not load: {broken}"
        assert count >= min_images
        assert_not_blank(self.screenshot(index, index.parent.parent / f"{index.parent.name}.png"))


@pytest.fixture(scope="session")
def browser(tmp_path_factory) -> Browser:
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); browser tests skipped")
    return Browser(executable, tmp_path_factory.mktemp("chromium-profile"))


def assert_not_blank(pixels: np.ndarray) -> None:
    """A screenshot with content: not one flat colour, and a fair share of non-white pixels."""
    rgb = pixels[..., :3]
    assert rgb.std() > 0.02
    assert (rgb.mean(axis=-1) < 0.9).mean() > 0.002
