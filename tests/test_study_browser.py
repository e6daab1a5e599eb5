"""A real rater in headless Chromium: keyboard ratings, a revision, a reload that resumes, answers in SQLite.

Uses Debian's /usr/bin/chromium and /usr/bin/chromedriver (apt: chromium chromium-driver) through Selenium.
Set FACEBENCH_SCREENSHOTS=<folder> to keep the page's screenshots.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from facebench.study.layout import read_key
from facebench.study.server import serve_in_thread

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
                                       "chromium-driver)")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1100,900")


@pytest.fixture
def browser(tmp_path: Path):
    os.environ.setdefault("SE_AVOID_STATS", "true")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _shot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    keep = os.environ.get("FACEBENCH_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    return path


def test_keyboard_rating_reload_resume_and_sqlite(browser, small_dataset: Path, tmp_path: Path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    from test_study_kit import make_study

    study = make_study(small_dataset, tmp_path, mode="both", n_items=4)
    server, url = serve_in_thread(study)
    wait = WebDriverWait(browser, 15)

    def at(position: int) -> None:
        wait.until(lambda d: d.find_element(By.ID, "task").is_displayed()
                   and d.find_element(By.ID, "task").get_attribute("data-position") == str(position))

    def press(*keys: str) -> None:
        ActionChains(browser).send_keys(*keys).perform()

    try:
        browser.get(url + "/")
        box = wait.until(lambda d: d.find_element(By.ID, "rater-input"))
        wait.until(lambda d: box.is_displayed())
        _shot(browser, tmp_path, "study-start.png")
        box.send_keys("kbd-rater", Keys.ENTER)
        at(0)
        total = int(browser.find_element(By.ID, "progress-text").text.split("/")[1].split()[0])
        press("5")
        at(1)
        press("2")
        at(2)
        press(Keys.ARROW_LEFT, Keys.ARROW_LEFT)  # focus starts mid-scale (3): two steps left is 1
        press(Keys.ENTER)
        at(3)
        press("3")
        at(4)
        press(Keys.BACKSPACE)  # back to the previous task, which shows the stored answer
        at(3)
        assert browser.find_element(By.CSS_SELECTOR, ".choice.chosen").get_attribute("data-value") == "3"
        press("4")  # revise it
        at(4)
        _shot(browser, tmp_path, "study-rating.png")
        assert "4 / " in browser.find_element(By.ID, "progress-text").text

        browser.refresh()  # the rater id is in the URL: the page resumes at the first unanswered task
        at(4)
        assert browser.find_element(By.ID, "progress-text").text == f"4 / {total} answered"

        key, _ = read_key(study)
        n_rating = sum(k.kind == "rating" for k in key.values())
        for pos in range(4, total):
            kind = browser.find_element(By.ID, "task").get_attribute("data-kind")
            assert kind == ("rating" if pos < n_rating else "pairwise")
            if kind == "pairwise" and pos == n_rating:
                _shot(browser, tmp_path, "study-pairwise.png")
            press("4" if kind == "rating" else (Keys.ARROW_LEFT if pos % 2 else Keys.ARROW_RIGHT))
            if pos + 1 < total:
                at(pos + 1)
        wait.until(lambda d: d.find_element(By.ID, "done").is_displayed())
        _shot(browser, tmp_path, "study-done.png")
    finally:
        server.shutdown()
        server.server_close()

    with sqlite3.connect(study / "ratings.sqlite") as db:
        rows = db.execute("SELECT position, kind, value, revisions, presented_at, answered_at FROM responses "
                          "WHERE rater='kbd-rater' ORDER BY position").fetchall()
    assert len(rows) == total
    assert [r[2] for r in rows[:4]] == [5, 2, 1, 4]
    assert rows[3][3] == 1 and all(r[3] == 0 for i, r in enumerate(rows) if i != 3)
    assert {r[2] for r in rows if r[1] == "pairwise"} == {1, 2}
    assert all(r[4] and r[5] and r[4] <= r[5] for r in rows)  # shown before answered, both timestamped
