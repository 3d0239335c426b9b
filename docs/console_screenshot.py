"""Regenerate docs/console.png: a private redis-server, the console, the demo run publishing to it, and a
screenshot by headless Debian chromium while the run is under way.

    python docs/console_screenshot.py [docs/console.png]
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from common import free_port, start_redis, wait_port  # noqa: E402


def main(out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    work = Path(tempfile.mkdtemp(prefix="itd-shot-"))
    redis, url = start_redis(work)
    port = free_port()
    procs = [redis, subprocess.Popen([sys.executable, "-m", "pipeline", "ui", "--redis", url, "--port", str(port)],
                                     cwd=REPO)]
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1360,820", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        wait_port(port, 30)
        driver.get(f"http://127.0.0.1:{port}/")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", "configs/demo.yaml", "--set", f"sinks.redis.url={url}",
             "--set", "sinks.console=null", "--set", "sinks.jsonl=null"], cwd=REPO))
        end = time.monotonic() + 180
        while time.monotonic() < end and len(driver.find_elements(By.CSS_SELECTOR, "#feed li")) < 5:
            time.sleep(0.2)
        time.sleep(1.5)
        shot = work / "shot.png"
        driver.save_screenshot(str(shot))
        Image.open(shot).convert("RGB").quantize(colors=96).save(out, optimize=True)
        print(f"{out}: {out.stat().st_size // 1024} KiB")
    finally:
        driver.quit()
        for p in reversed(procs):
            p.terminate()
            p.wait(10)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "console.png")
