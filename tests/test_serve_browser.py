"""The browser page of ``digitnet serve`` in a real browser: headless Chromium driven by
Selenium through the system's chromedriver.

The real command serves on a free loopback port; the test draws a 7 with pointer events (a
mouse stroke, a pen stroke), checks the reading the page shows, its probability bars and the
28x28 input, undoes a touch stroke, reads an uploaded number and saves a screenshot. It skips,
saying why, only where no Chromium / chromedriver is installed (``.ci/run`` installs them).
Set ``DIGITNET_SERVE_SCREENSHOT=FILE`` to keep the screenshot (docs/screenshots/serve.png).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("fastapi", reason="the serve extra is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = next(
    (
        p
        for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", shutil.which("chromium") or "")
        if p and Path(p).exists()
    ),
    None,
)
DRIVER = next(
    (
        p
        for p in ("/usr/bin/chromedriver", shutil.which("chromedriver") or "")
        if p and Path(p).exists()
    ),
    None,
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="no headless browser: install Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver); .ci/run does where it can",
)


@contextlib.contextmanager
def serving(*flags: str):
    """The real ``digitnet serve`` on a free loopback port; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "digitnet", "serve", "--port", "0", "--workers", "2", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        m = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        if not m:
            proc.kill()
            _, err = proc.communicate(timeout=20)
            pytest.fail(f"digitnet serve did not start: {line!r} {err!r}")
        yield m.group(1)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


@pytest.fixture(scope="module")
def server():
    with serving() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="digitnet-chromium-")
    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--disable-extensions",
        "--window-size=1200,1250",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def stroke(
    driver, element, kind: str, points: list[tuple[float, float]], lift: bool = True
) -> None:
    """One stroke through ``points`` (fractions of the canvas, 0..1) with a ``kind`` pointer:
    "mouse", "pen" or "touch", sent as W3C pointer actions (the page sees pointer events).
    ``lift=False`` leaves the pointer down (``lift_pointer`` ends the stroke)."""
    kinds = {
        "mouse": interaction.POINTER_MOUSE,
        "pen": interaction.POINTER_PEN,
        "touch": interaction.POINTER_TOUCH,
    }
    w, h = element.size["width"], element.size["height"]
    pointer = PointerInput(kinds[kind], kind)
    actions = ActionBuilder(driver, mouse=pointer, duration=10)

    def to(p):  # Selenium offsets are from the element's centre
        return int((p[0] - 0.5) * w), int((p[1] - 0.5) * h)

    actions.pointer_action.move_to(element, *to(points[0]))
    actions.pointer_action.pointer_down()
    for a, b in itertools.pairwise(points):
        for t in (0.25, 0.5, 0.75, 1.0):  # several moves per segment, as a hand makes
            actions.pointer_action.move_to(
                element, *to((a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t))
            )
    if lift:
        actions.pointer_action.pointer_up()
    actions.perform()


def lift_pointer(driver, kind: str) -> None:
    kinds = {"mouse": interaction.POINTER_MOUSE, "pen": interaction.POINTER_PEN}
    actions = ActionBuilder(driver, mouse=PointerInput(kinds[kind], kind), duration=10)
    actions.pointer_action.pointer_up()
    actions.perform()


def wait_text(driver, element_id: str, want: str, timeout: float = 20) -> str:
    def check(d):
        text = d.find_element(By.ID, element_id).text
        return text if text == want else False

    try:
        return WebDriverWait(driver, timeout).until(check)
    except TimeoutException:
        got = driver.find_element(By.ID, element_id).text
        status = driver.find_element(By.ID, "status").text
        pytest.fail(f"#{element_id} shows {got!r}, expected {want!r} (status: {status!r})")


def save_shot(driver, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path))
    with Image.open(path) as img:
        assert img.size[0] >= 800 and len(np.unique(np.asarray(img.convert("L")))) > 10


def test_draw_a_digit_and_read_it(server, browser, tmp_path):
    browser.get(server + "/")
    WebDriverWait(browser, 20).until(
        lambda d: (
            "model" in d.find_element(By.ID, "model-info").text
            and "loading" not in d.find_element(By.ID, "model-info").text
        )
    )
    pad = browser.find_element(By.ID, "pad")
    assert browser.find_element(By.ID, "undo").get_attribute("disabled")

    # A touch scribble first, undone: Undo works from the very first stroke.
    stroke(browser, pad, "touch", [(0.2, 0.8), (0.3, 0.7)])
    undo = browser.find_element(By.ID, "undo")
    assert undo.is_enabled()
    undo.click()
    wait_text(browser, "reading-text", "-")
    assert not undo.is_enabled()

    # A 7 in one pen stroke, read while the pen is still down (the canvas was empty, so only
    # live reading during the stroke can show it), then its cross-bar with the mouse.
    assert browser.find_element(By.ID, "reading-text").text == "-"
    stroke(browser, pad, "pen", [(0.25, 0.2), (0.75, 0.2), (0.6, 0.5), (0.45, 0.85)], lift=False)
    wait_text(browser, "reading-text", "7")
    lift_pointer(browser, "pen")
    stroke(browser, pad, "mouse", [(0.45, 0.5), (0.72, 0.5)])
    ink = browser.execute_script(
        "const c = arguments[0]; return Array.from(c.getContext('2d')"
        ".getImageData(Math.round(c.width * 0.68), Math.round(c.height * 0.5), 1, 1).data)",
        pad,
    )
    assert ink[:3] == [0, 0, 0]  # the mouse stroke is on the canvas
    wait_text(browser, "reading-text", "7")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#digit-chips .chip")) == 1

    bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar")
    assert len(bars) == 10
    best = [b.get_attribute("data-digit") for b in bars if "best" in b.get_attribute("class")]
    assert best == ["7"]
    pct = float(bars[7].find_element(By.CLASS_NAME, "pct").text.rstrip("%"))
    assert pct > 50
    seen = browser.find_element(By.ID, "net-input")
    assert seen.is_displayed() and seen.get_attribute("src").startswith("data:image/png")
    assert browser.execute_script("return arguments[0].naturalWidth", seen) == 28
    chips = browser.find_elements(By.CSS_SELECTOR, "#digit-chips .chip")
    assert len(chips) == 1 and chips[0].text.startswith("7 ")

    save_shot(browser, tmp_path / "drawn.png")

    # Clear empties the reading.
    browser.find_element(By.ID, "clear").click()
    wait_text(browser, "reading-text", "-")

    problems = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, problems  # no failed asset, no blocked (off-server) load


def test_upload_an_image_and_see_its_boxes(server, browser, tmp_path):
    img = Image.new("L", (420, 220), 255)
    d = ImageDraw.Draw(img)
    d.line([(90, 40), (90, 190)], fill=0, width=18)
    d.line([(220, 45), (350, 45), (260, 190)], fill=0, width=18)
    path = tmp_path / "number.png"
    img.save(path)

    browser.get(server + "/")
    browser.find_element(By.ID, "file").send_keys(str(path))
    wait_text(browser, "upload-text", "17")
    view = browser.find_element(By.ID, "upload-view")
    WebDriverWait(browser, 10).until(lambda _: view.is_displayed())
    # The boxes are drawn on the shown image: green pixels where the 1's box is.
    png = browser.execute_script("return arguments[0].toDataURL('image/png')", view)
    import base64

    shown = Image.open(io.BytesIO(base64.b64decode(png.split(",", 1)[1])))
    rgb = np.asarray(shown.convert("RGB")).astype(int)
    greens = int(((rgb[..., 1] > 120) & (rgb[..., 0] < 80) & (rgb[..., 2] < 140)).sum())
    assert greens > 100 * shown.size[0] / 420  # two box outlines, a few hundred pixels
    assert len(browser.find_elements(By.CSS_SELECTOR, "#upload-chips .chip")) == 2

    # The page as the README shows it: a drawn digit read live, and the uploaded number.
    pad = browser.find_element(By.ID, "pad")
    stroke(browser, pad, "mouse", [(0.3, 0.15), (0.72, 0.15), (0.45, 0.88)])
    stroke(browser, pad, "mouse", [(0.4, 0.5), (0.68, 0.5)])
    wait_text(browser, "reading-text", "7")
    save_shot(browser, Path(os.environ.get("DIGITNET_SERVE_SCREENSHOT") or tmp_path / "serve.png"))


def test_a_server_with_a_token_asks_for_it(browser, tmp_path):
    token = "browser-test-token-0123456789"
    (tmp_path / "token").write_text(token + "\n")
    with serving("--token-file", str(tmp_path / "token")) as url:
        browser.get(url + "/")
        form = browser.find_element(By.ID, "token-form")
        WebDriverWait(browser, 20).until(lambda _: form.is_displayed())
        assert "Bearer" in browser.find_element(By.ID, "status").text
        browser.find_element(By.ID, "token-input").send_keys("wrong-token-0123456789")
        form.submit()
        WebDriverWait(browser, 20).until(lambda _: form.is_displayed())
        assert "wrong bearer token" in browser.find_element(By.ID, "status").text
        field = browser.find_element(By.ID, "token-input")
        field.clear()
        field.send_keys(token)
        form.submit()
        WebDriverWait(browser, 20).until(
            lambda d: (
                "model" in d.find_element(By.ID, "model-info").text
                and "loading" not in d.find_element(By.ID, "model-info").text
            )
        )
        pad = browser.find_element(By.ID, "pad")
        stroke(browser, pad, "mouse", [(0.25, 0.2), (0.75, 0.2), (0.6, 0.5), (0.45, 0.85)])
        wait_text(browser, "reading-text", "7")
        browser.execute_script("sessionStorage.clear()")
