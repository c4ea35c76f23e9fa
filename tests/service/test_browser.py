"""The web UI in a real headless browser (Debian's chromium and chromium-driver, via selenium).

Skipped, saying why, when selenium, chromium or chromedriver is missing (`.ci/run` installs them).
Set ``LOOKALIKE_UI_SCREENSHOT=docs/img/ui.png`` to save a screenshot of the results page.
"""

from __future__ import annotations

import math
import os
import shutil

import pytest

from tests.conftest import photo

webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (pip install selenium)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="the browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(10)
    yield driver
    driver.quit()


def visible_cards(driver) -> int:
    from selenium.webdriver.common.by import By

    return sum(card.is_displayed() for card in driver.find_elements(By.CSS_SELECTOR, ".results .card"))


def test_upload_slider_click_through_and_duplicates(browser, live_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    query = tmp_path / "query <1>.jpg"
    photo(0, (160, 120)).resize((150, 112)).save(query, quality=85)

    browser.get(live_server + "/")
    browser.find_element(By.LINK_TEXT, "photos").click()
    # choosing a file submits the form (plain JavaScript); the page comes back with the results
    browser.find_element(By.ID, "image").send_keys(str(query))
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".results .card")))
    assert "query <1>.jpg" in browser.find_element(By.CSS_SELECTOR, ".query .name").text  # escaped, shown as text
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".results .card .name")]
    assert len(names) == 14 and set(names[:3]) == {"img00.jpg", "img00_crop.jpg", "img00_small.jpg"}
    images = browser.find_elements(By.CSS_SELECTOR, ".results .card img")
    wait.until(lambda d: all(d.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images[:3]))

    # the slider hides the results below its value
    slider = browser.find_element(By.ID, "threshold")
    scores = [float(e.get_attribute("data-score")) for e in browser.find_elements(By.CSS_SELECTOR, ".results .card")]
    assert scores == sorted(scores, reverse=True)
    value = math.floor(scores[2] * 100) / 100
    browser.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'))",
                           slider, f"{value:.2f}")
    expected = sum(s >= value - 1e-9 for s in scores)
    assert visible_cards(browser) == expected == int(browser.find_element(By.ID, "shown").text) < 14
    if os.environ.get("LOOKALIKE_UI_SCREENSHOT"):
        browser.execute_script("arguments[0].value = arguments[0].min; arguments[0].dispatchEvent(new Event('input'))",
                               slider)
        browser.save_screenshot(os.environ["LOOKALIKE_UI_SCREENSHOT"])

    # click a result: "more like this" from it
    browser.find_elements(By.CSS_SELECTOR, ".results .card a")[1].click()
    wait.until(expected_conditions.url_contains("/similar/"))
    assert len(browser.find_elements(By.CSS_SELECTOR, ".results .card")) == 13  # all but the query itself

    browser.find_element(By.LINK_TEXT, "near-duplicates").click()
    # the presets are calibrated for another descriptor: the page asks for a threshold
    assert "give --threshold" in browser.find_element(By.CSS_SELECTOR, ".message").text
    browser.find_element(By.ID, "duplicates-threshold").send_keys("0.9")
    browser.find_element(By.CSS_SELECTOR, "form.presets button").click()
    wait.until(expected_conditions.url_contains("threshold=0.9"))
    group_names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".group .card .name")]
    assert "img00_crop.jpg" in " ".join(group_names)
    browser.find_element(By.LINK_TEXT, "info").click()
    assert "color-hist" in browser.find_element(By.CSS_SELECTOR, "table.info").text
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []  # no script error, nothing refused by the content security policy
