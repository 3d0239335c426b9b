"""The operator console in a real browser (Debian chromium + chromium-driver, driven by Selenium) against a real
redis-server and the real demo run (shipped weights, the real clip `samples/drone`) publishing to it. With
`ITD_SCREENSHOT=docs/console.png`, the demo test writes the README's screenshot of the page during the run."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, pipeline_env
from common import free_port, wait_port

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _browser_missing() -> str | None:
    for path, apt in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists():
            return f"{path} is not installed (apt: {apt})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture
def browser():
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console: 404s, JS errors
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Console:
    """`python -m pipeline ui` on a free port."""

    def __init__(self, redis_url: str, env: dict | None = None, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline", "ui", "--redis", redis_url, "--port",
                                      str(self.port), *args], cwd=REPO, env=env or pipeline_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if not wait_port(self.port, timeout=30):
            self.stop()
            raise RuntimeError(f"console did not start: {self.proc.stderr.read()}")

    def get_json(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


@pytest.fixture
def console(redis_server):
    c = Console(redis_server.url)
    yield c
    c.stop()


def wait_for(driver, condition, timeout: float, what: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))
    except TimeoutException:
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def console_problems(driver) -> list[str]:
    """The page's console errors (a failed request, a 404, a script error) since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def save_screenshot(driver, out: Path) -> None:
    from PIL import Image

    raw = out.with_suffix(".raw.png")
    driver.save_screenshot(str(raw))
    Image.open(raw).convert("RGB").quantize(colors=96).save(out, optimize=True)
    raw.unlink()


def image_height(driver, element) -> int:
    """The natural height of a loaded, visible <img> (0 while it is not)."""
    return driver.execute_script("const i = arguments[0]; return (i.complete && !i.hidden) ? i.naturalHeight : 0;",
                                 element)


def image_loaded(driver, element) -> int:
    """The natural width of a loaded, visible <img> (0 while it is not)."""
    return driver.execute_script("const i = arguments[0]; return (i.complete && !i.hidden) ? i.naturalWidth : 0;",
                                 element)


@pytest.mark.timeout(400)
def test_demo_run_shows_camera_alerts_and_snapshots_live(browser, console, redis_server, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(console.url)
    browser.execute_script("window.__sameDocument = true;")
    wait_for(browser, lambda d: d.find_element(By.ID, "redis-state").text == "Redis connected", 15,
             "the page to connect")
    assert browser.find_element(By.ID, "no-cameras").is_displayed()

    # the demo, with a Redis sink added; the page was loaded before anything was published
    run = subprocess.Popen(
        ["nice", "-n", "5", sys.executable, "-m", "pipeline", "run", "configs/demo.yaml",
         "--set", f"sinks.redis.url={redis_server.url}", "--set", "sinks.redis.live.ttl_s=600",
         "--set", "sinks.console=null"],
        cwd=REPO, env=pipeline_env(ALERTS_OUT=str(tmp_path / "alerts.jsonl")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        card = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".camera[data-camera=drone]"), 120,
                        "the camera to appear")[0]
        live = card.find_element(By.CSS_SELECTOR, "img.live")
        # the clip's width (live.width is 640: no enlargement); until the first live frame is published, the
        # console shows "no live view" and the image stays hidden
        wait_for(browser, lambda d: image_loaded(d, live) == 320, 120, "the live view")
        chip = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#feed li[data-event=new] img.chip"), 180,
                        "a `new` alert with its chip")[0]
        shot = os.environ.get("ITD_SCREENSHOT")
        if shot:  # the README's picture: the page during the run, its alert's chip shown
            wait_for(browser, lambda d: image_loaded(d, chip), 10, "the chip")
            save_screenshot(browser, REPO / shot)
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()

    produced = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    news = [a for a in produced if a["event"] == "new"]
    assert news, "the demo raised no `new` alert"
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#feed li[data-event=new]")) == len(news), 10,
             "every `new` alert on the page")
    items = browser.find_elements(By.CSS_SELECTOR, "#feed li[data-event=new]")
    # each `new` alert reached the page by push, without reload, within 1 s of its publication to Redis
    delays = [float(li.get_attribute("data-shown-at")) - float(li.get_attribute("data-published-at")) for li in items]
    print(f"publication -> on the page: max {max(delays) * 1000:.0f} ms over {len(delays)} `new` alerts")
    assert max(delays) <= 1.0, delays
    assert browser.execute_script("return window.__sameDocument === true;")
    for li in items:
        chip = li.find_element(By.CSS_SELECTOR, "img.chip")
        assert wait_for(browser, lambda d: image_loaded(d, chip), 10, "a chip") == 96
    status = card.find_element(By.CSS_SELECTOR, ".status")
    wait_for(browser, lambda d: status.text == "finished", 10, "the camera to show finished")

    # click: the big snapshot (the frame reduced to at most 480 px wide: the clip's 320x256 as it is)
    items[0].click()
    big = browser.find_element(By.ID, "modal-frame")
    assert wait_for(browser, lambda d: image_height(d, big), 10, "the big snapshot") == 256
    browser.find_element(By.ID, "modal-close").click()

    assert console_problems(browser) == []  # no 404 (favicon, live image) and no script error so far
    # an expired snapshot: a placeholder picture that says so (404 with an SVG), not a broken image
    sid = news[0]["snapshot_url"].rsplit("/", 1)[1]
    redis_server.client().delete(f"itd:snapshot:{sid}:frame", f"itd:snapshot:{sid}:chip")
    target = [li for li in items if li.get_attribute("data-track") == str(news[0]["track_id"])][0]
    target.click()
    wait_for(browser, lambda d: big.get_attribute("src").endswith(sid) and image_height(d, big) == 240, 10,
             "the expired-snapshot placeholder (320x240)")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(console.url + news[0]["snapshot_url"], timeout=10)
    assert e.value.code == 404 and b"snapshot expired or missing" in e.value.read()

    # the JSON API
    alerts = console.get_json("/api/alerts?limit=5")
    assert len(alerts) == 5 and all(a["snapshot_url"].startswith("/snapshots/") for a in alerts)
    assert alerts[0]["published_at"] >= alerts[-1]["published_at"]
    cams = console.get_json("/api/cameras")
    assert [c["camera"] for c in cams] == ["drone"] and cams[0]["status"] == "finished"

    # the caption names the frame the live image shows (the run is over: the last image stays)
    with urllib.request.urlopen(console.url + "/live/drone.jpg", timeout=10) as r:
        shown = r.headers["X-Frame-Index"]
    assert int(shown) == cams[0]["live_frame_index"] > 1
    foot = card.find_element(By.CSS_SELECTOR, ".foot .frame")
    wait_for(browser, lambda d: foot.text == f"frame {shown}", 10, "the caption to name the live image's frame")
    # nothing on the page names where the pipeline runs from; the only 404 was the expired snapshot's
    assert str(REPO) not in browser.find_element(By.TAG_NAME, "body").text
    assert all(sid in m for m in console_problems(browser))


@pytest.mark.timeout(120)
def test_redis_outage_is_shown_and_the_page_recovers(browser, console, redis_server):
    from selenium.webdriver.common.by import By

    r = redis_server.client()

    def publish(track: int) -> None:
        alert = {"schema": 1, "event": "new", "camera": "cam1", "track_id": track, "frame_index": 1,
                 "score": 0.9, "x": 10, "y": 10, "published_at": time.time(), "snapshot_url": None}
        r.xadd("itd:alerts", {"camera": "cam1", "event": "new", "alert": json.dumps(alert)})

    publish(1)
    browser.get(console.url)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#feed li[data-track='1']"), 15, "the first alert")
    redis_server.stop()
    banner = browser.find_element(By.ID, "banner")
    wait_for(browser, lambda d: banner.is_displayed() and "Redis unreachable" in banner.text, 15, "the outage banner")
    redis_server.start()
    r = redis_server.client()
    wait_for(browser, lambda d: not banner.is_displayed(), 20, "the banner to go")
    publish(2)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#feed li[data-track='2']"), 15,
             "an alert published after the outage")
    li = browser.find_element(By.CSS_SELECTOR, "#feed li[data-track='2']")
    assert li.find_element(By.CSS_SELECTOR, ".nochip").text == "no picture"


@pytest.mark.timeout(120)
def test_a_finished_camera_leaves_the_list_after_forget_after(browser, redis_server):
    """A camera whose run ended shows `finished` (also once its heartbeat key expired), then leaves the list."""
    from selenium.webdriver.common.by import By

    r = redis_server.client()
    status = {"schema": 1, "event": "status", "camera": "cam9", "status": "finished", "reason": "", "at": time.time(),
              "updated_at": time.time()}
    r.set("itd:camera:cam9", json.dumps(status), px=2000)  # expires long before the console forgets the camera
    console = Console(redis_server.url, None, "--forget-after", "6")
    try:
        browser.get(console.url)
        card = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".camera[data-camera=cam9]"), 15,
                        "the camera")[0]
        status_el = card.find_element(By.CSS_SELECTOR, ".status")
        assert status_el.text == "finished"
        time.sleep(3)  # its key is gone: still finished, not `gone`
        assert r.get("itd:camera:cam9") is None and status_el.text == "finished"
        wait_for(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, ".camera[data-camera=cam9]"), 15,
                 "the finished camera to leave the list")
        assert browser.find_element(By.ID, "no-cameras").is_displayed()
        assert console.get_json("/api/cameras") == []
        assert console_problems(browser) == []  # favicon served, no live image asked of a camera without one
    finally:
        console.stop()
