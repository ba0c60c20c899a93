"""An operator watching the alert page in a real headless Chromium sees a new alert arrive live, acknowledges it under
their own name, reads its history, resolves it with a verdict and finds it in the resolved view."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from stream.synthetic import prediction
from tests.stream.conftest import TOKEN, RunningWorker

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        pytest.fail("chromium and chromium-driver are not installed: run scripts/services")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(
        service=Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "driver.log")), options=options
    )
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_shows_a_new_alert_live_and_acknowledges_it(
    worker: RunningWorker, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(worker.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "live"))
    assert "No active alerts" in browser.find_element(By.ID, "empty").text or browser.find_elements(
        By.CSS_SELECTOR, "tr.alert-row"
    )
    for field, value in (("token", TOKEN), ("who", "ana")):
        element = browser.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
        browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", element)

    worker.produce([prediction("page-1", time.time() - 100 + 10 * i, "cavitation", 0.97, ttf_hours=3.0) for i in range(5)])
    row_css = "tr[data-alert-id^='page-1:cavitation:']"
    row = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, row_css)))
    assert "CRITICAL" in row.text.upper() and "3.0 h" in row.text and "vibration_rms" in row.text
    opened = row.find_element(By.CSS_SELECTOR, "td.opened").text
    assert time.strftime("%Y") in opened and "plant1" in row.text  # a date, not only a time; the site column
    browser.save_screenshot(str(tmp_path / "alert.png"))

    def acknowledge(driver: webdriver.Chrome) -> bool:
        """Find the button afresh: a live update may re-render the row between finding and clicking."""
        driver.find_element(By.CSS_SELECTOR, f"{row_css} button.action-acknowledge").click()
        return True

    WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(acknowledge)
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{row_css} td.state"), "acknowledged"))
    alert_id = browser.find_element(By.CSS_SELECTOR, row_css).get_attribute("data-alert-id")
    stored = worker.get(f"/api/alerts/{alert_id}")
    assert stored["state"] == "acknowledged" and stored["acknowledged_by"] == "ana"  # the person, not "web"

    def details(driver: webdriver.Chrome) -> bool:
        driver.find_element(By.CSS_SELECTOR, f"{row_css} button.action-details").click()
        return True

    WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(details)
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#detail table.history"), "acknowledged"))
    assert "ana" in browser.find_element(By.CSS_SELECTOR, "#detail table.history").text
    assert browser.find_elements(By.CSS_SELECTOR, "#detail svg.chart-vibration_rms line")  # the deciding channel vs normal
    browser.save_screenshot(str(tmp_path / "detail.png"))
    Select(browser.find_element(By.ID, "d-verdict")).select_by_value("false_alarm")
    browser.find_element(By.ID, "d-note").send_keys("pump on test run")
    browser.find_element(By.CSS_SELECTOR, "#detail button.d-resolve").click()
    wait.until(lambda _: worker.get(f"/api/alerts/{alert_id}")["state"] == "resolved")
    resolved = worker.get(f"/api/alerts/{alert_id}")
    assert resolved["verdict"] == "false_alarm" and resolved["resolved_by"] == "ana"
    assert resolved["verdict_note"] == "pump on test run"
    wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, row_css)))  # gone from the active view
    Select(browser.find_element(By.ID, "f-state")).select_by_value("resolved")
    back = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, row_css)))
    assert "false alarm" in back.text
    browser.find_element(By.ID, "f-site").send_keys("elsewhere")
    wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, row_css)))  # filtered out by site
    kpis = browser.find_element(By.ID, "kpis").text
    assert "plant1" in kpis and "/h" in kpis
