"""The studio's real page in headless Chromium: edit the form, watch frames appear, cancel,
download the GIF and find in it exactly the frames the page showed."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

webdriver = pytest.importorskip("selenium.webdriver")
pytest.importorskip("starlette")

from helpers import ROOT  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
# Off CI, a machine without Debian's chromium skips the page test; CI installs both (.ci/run), so
# there a missing browser is a failure, not a silent skip.
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER) and not os.environ.get("CI"),
                                reason="needs apt-get install chromium chromium-driver")

TINY = ("input: {noise: {size: [48, 48], seed: 2}}\nframes: 8\nseed: 1\n"
        "dream: {model: vgg16-hed, octaves: 1, steps: 2, jitter: 4, layers: {block3_conv3: 1.0}}\n"
        "transforms: [{zoom: {factor: 1.05}}]\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`animator studio` as a user starts it, on a free port."""
    folder, port = tmp_path_factory.mktemp("studio") / "renders", free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                        os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "animator", "studio", "--dir", str(folder),
                                "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "api/status", timeout=1)
            break
        except OSError:
            if process.poll() is not None:
                raise AssertionError(f"studio exited: {process.stderr.read()}") from None
            time.sleep(0.3)
    yield url, folder
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def set_field(driver, element_id: str, value: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)
    driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", field)


def test_edit_render_watch_cancel_download(server, browser):
    url, folder = server
    wait = WebDriverWait(browser, 120, poll_frequency=0.1)
    browser.get(url)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    yaml_box = browser.find_element(By.ID, "yaml")
    browser.execute_script("arguments[0].value = arguments[1];"
                           "arguments[0].dispatchEvent(new Event('input'))", yaml_box, TINY)
    wait.until(lambda d: d.find_element(By.ID, "f-frames").get_attribute("value") == "8")

    set_field(browser, "f-frames", "60")  # the form edits the YAML beside it
    set_field(browser, "f-transforms[0].zoom.factor", "1.1")
    wait.until(lambda d: "frames: 60" in yaml_box.get_attribute("value")
               and "factor: 1.1" in yaml_box.get_attribute("value"))
    set_field(browser, "f-dream.steps", "-3")  # a bad value: the CLI's message, beside the field
    wait.until(lambda d: "dream.steps: must be >= 0 and <= 100,000, got -3" in d.find_element(
        By.CSS_SELECTOR, '.err[data-path="dream.steps"]').text)
    set_field(browser, "f-dream.steps", "2")
    wait.until(lambda d: not d.find_element(By.CSS_SELECTOR, '.err[data-path="dream.steps"]').text)

    browser.find_element(By.ID, "name").clear()
    browser.find_element(By.ID, "name").send_keys("watched")
    browser.find_element(By.ID, "start").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#film img.frame")) >= 3)
    browser.find_element(By.ID, "cancel").click()
    state = browser.find_element(By.ID, "state")
    wait.until(lambda d: state.get_attribute("data-state") in ("cancelled", "done", "failed"))
    assert state.get_attribute("data-state") == "cancelled", browser.find_element(By.ID, "message").text

    shown = browser.find_elements(By.CSS_SELECTOR, "#film img.frame")
    indices = [int(img.get_attribute("data-index")) for img in shown]
    assert indices == list(range(len(indices))) and 3 <= len(indices) < 60
    seen = [np.asarray(Image.open(io.BytesIO(fetch(img.get_attribute("src")))).convert("RGB"), np.float32)
            for img in shown]
    link = browser.find_element(By.ID, "download-gif")
    gif_url = link.get_attribute("href")
    link.click()  # the page has the GIF made (a POST: a GET changes nothing), then downloads it
    wait.until(lambda d: link.get_attribute("data-made") == "1")
    with Image.open(io.BytesIO(fetch(gif_url))) as gif:
        assert gif.n_frames == len(seen)
        for index in range(gif.n_frames):
            gif.seek(index)
            frame = np.asarray(gif.convert("RGB"), np.float32)
            distances = [np.abs(frame - live).mean() for live in seen]
            assert int(np.argmin(distances)) == index  # the nearest live frame is its own
            assert distances[index] < 8  # GIF palette and dithering error; neighbours are ~16 apart
    assert (folder / "watched.yaml").is_file()

    # the gallery re-opens the render's config in the form and the YAML
    card = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '#gallery .card[data-name="watched"]'))
    set_field(browser, "f-frames", "5")
    browser.find_element(By.ID, "name").clear()
    card.find_element(By.CSS_SELECTOR, "button.open").click()
    wait.until(lambda d: d.find_element(By.ID, "f-frames").get_attribute("value") == "60")
    assert browser.find_element(By.ID, "name").get_attribute("value") == "watched"
    assert "factor: 1.1" in yaml_box.get_attribute("value")


def test_choosing_noise_after_an_upload_writes_the_declared_noise(server, browser, photo_path):
    import json

    import yaml

    url, folder = server
    wait = WebDriverWait(browser, 60, poll_frequency=0.1)
    browser.get(url)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    yaml_box = browser.find_element(By.ID, "yaml")

    def page_input(driver):
        return yaml.safe_load(yaml_box.get_attribute("value"))["input"]

    browser.find_element(By.ID, "upload").send_keys(str(photo_path))
    named = re.compile(rf"inputs/{re.escape(photo_path.stem)}-[0-9a-f]{{16}}{re.escape(photo_path.suffix)}")
    wait.until(lambda d: named.fullmatch(str(page_input(d))))  # the upload is named for its content
    browser.find_element(By.ID, "input-noise").click()
    declared = json.loads(fetch(url + "api/form"))["noise"]
    wait.until(lambda d: page_input(d) == declared)
