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
    "--allow-file-access-from-files",  # the check reads the pixels of the report's own PNGs
]
CHECK_SCRIPT = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const broken = images
    .filter((img) => !(img.complete && img.naturalWidth > 0))
    .map((img) => img.getAttribute("src").slice(0, 80));
  // A figure is blank when (almost) every pixel is the page's white: drawn on a canvas at its
  // own size, the share of pixels darker than near-white must pass BLANK_SHARE.
  const blank = images
    .filter((img) => img.complete && img.naturalWidth > 0)
    .filter((img) => {
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const context = canvas.getContext("2d");
      context.drawImage(img, 0, 0);
      const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
      let inked = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        if (pixels[i] + pixels[i + 1] + pixels[i + 2] < 3 * 235) inked += 1;
      }
      return inked / (pixels.length / 4) < BLANK_SHARE;
    })
    .map((img) => img.getAttribute("src").slice(0, 80));
  document.body.setAttribute("data-broken", JSON.stringify(broken));
  document.body.setAttribute("data-blank", JSON.stringify(blank));
  document.body.setAttribute("data-images", String(images.length));
});
</script>"""
BLANK_SHARE = 0.01
"""A figure with less than 1% of its pixels darker than near-white counts as blank."""


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

    def images(self, index: Path) -> tuple[int, list[str], list[str]]:
        """(number of images, sources of those that did not load, sources of those that loaded
        blank) on the page, as Chromium renders it."""
        page = index.read_text(encoding="utf-8")
        check = index.with_name("_browser_check.html")
        script = CHECK_SCRIPT.replace("BLANK_SHARE", str(BLANK_SHARE))
        check.write_text(page.replace("</body>", script + "</body>"), encoding="utf-8")
        try:
            dom = self._run("--virtual-time-budget=10000", "--dump-dom", check.as_uri())
        finally:
            check.unlink()
        found = {
            name: re.search(rf'data-{name}="([^"]*)"', dom)
            for name in ("images", "broken", "blank")
        }
        assert all(found.values()), "the page never finished loading in Chromium"
        count, broken, blank = (m.group(1).replace("&quot;", '"') for m in found.values())
        return int(count), json.loads(broken), json.loads(blank)

    def screenshot(self, index: Path, out: Path) -> np.ndarray:
        self._run(f"--screenshot={out}", "--window-size=1280,1600", index.as_uri())
        import matplotlib.image

        return matplotlib.image.imread(out)

    def check_report(self, index: Path, min_images: int) -> None:
        """Every image on the page loads and none is blank, there are at least ``min_images``
        (as many as the page's <img> tags), and the page itself is not blank."""
        count, broken, blank = self.images(index)
        assert broken == [], f"images that did not load: {broken}"
        assert blank == [], f"figures that are blank: {blank}"
        assert count >= min_images and count == index.read_text().count("<img ")
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
