"""Render a short dream in the studio page (headless Chromium) and save a screenshot of it.

    python scripts/studio_screenshot.py                 # writes docs/studio.png

Needs Debian's chromium and chromium-driver (or any Chrome with its chromedriver on PATH) and the
studio extra. Uses the bundled model, offline; about a minute on a laptop CPU.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """\
input: inputs/chelsea.jpg
size: [240, 160]
frames: 10
fps: 8
seed: 1
dream:
  layers: {block4_conv3: 1.0}
  octaves: 2
  steps: 5
  step_size: 2.0
  jitter: 16
transforms:
  - zoom: {factor: 1.05}
  - rotate: {degrees: 1.5}
color: {coherence: match_first}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "studio.png"))
    args = parser.parse_args(argv)
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "inputs").mkdir()
        shutil.copy(ROOT / "configs" / "images" / "chelsea.jpg", Path(folder) / "inputs")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "animator", "studio", "--dir", folder,
                                   "--port", str(port)], cwd=ROOT)
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
        for flag in ("--headless=new", "--no-sandbox", "--window-size=1400,1250"):
            options.add_argument(flag)
        from selenium.webdriver.chrome.service import Service

        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            url = f"http://127.0.0.1:{port}/"
            for _ in range(300):
                try:
                    urllib.request.urlopen(url + "api/status", timeout=1)
                    break
                except OSError:
                    time.sleep(0.3)
            driver.get(url)
            wait = WebDriverWait(driver, 600)
            wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
            box = driver.find_element(By.ID, "yaml")
            driver.execute_script("arguments[0].value = arguments[1];"
                                  "arguments[0].dispatchEvent(new Event('input'))", box, CONFIG)
            wait.until(lambda d: d.find_element(By.ID, "f-frames").get_attribute("value") == "10")
            driver.find_element(By.ID, "name").clear()
            driver.find_element(By.ID, "name").send_keys("chelsea-zoom")
            driver.find_element(By.ID, "start").click()
            wait.until(lambda d: d.find_element(By.ID, "state").get_attribute("data-state") == "done")
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#gallery .card img"))
            driver.save_screenshot(args.output)
        finally:
            driver.quit()
            server.terminate()
            server.wait()
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
