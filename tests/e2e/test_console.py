"""The console in Debian's headless Chromium against a real node: sign in, fleet, a device's chart of
points published over MQTT in the test, an alert appearing live and acknowledged, a dashboard with
two widgets that survives a reload. Screenshots of the main pages go to <tmp>/screenshots/."""
from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.test_node import device_client, envelope

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.broker]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("console") / "screenshots"
    path.mkdir()
    print(f"\nconsole screenshots: {path}")
    return path


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        if os.environ.get("CI"):  # in CI a missing browser is a failure, never a skip
            pytest.fail("Chromium and chromedriver are required (.ci/run installs chromium chromium-driver)")
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def wait(driver, fn, timeout: float = 30.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: fn(d))


def css(driver, selector):
    return driver.find_elements("css selector", selector)


def base(stack) -> str:
    return f"http://127.0.0.1:{stack.settings.http_port}"


def sign_in(driver, stack) -> None:
    password = (stack.settings.data_dir / "admin_password").read_text().strip()
    driver.get(base(stack) + "/#/login")
    wait(driver, lambda d: css(d, "#email"))
    css(driver, "#email")[0].send_keys("admin@demo.local")
    css(driver, "#password")[0].send_keys(password)
    css(driver, "#signin")[0].click()
    wait(driver, lambda d: css(d, "#fleet-rows"))


async def publish(stack, device_id: str, secret: str, values: list[dict]) -> None:
    async with device_client(stack, device_id, secret) as dev:
        for seq, metrics in enumerate(values, start=1):
            await dev.publish(f"tenant/demo/device/{device_id}/telemetry", envelope(seq, **metrics), qos=1)


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
async def test_sign_in_see_the_fleet_and_a_device_chart_of_published_points(stack, browser, shots):
    secret = stack.create_device("console-1")
    stack.create_device("console-2")
    await publish(stack, "console-1", secret, [{"temp": 20.0 + i} for i in range(5)])
    # the points are in the lake's acknowledged rows: wait until the bucketed history holds them
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = stack.http.get("/api/v1/customer/devices/console-1/telemetry/history", params={"metric": "temp", "range": "1h"})
        if r.status_code == 200 and r.json()["count"]:
            break
        await asyncio.sleep(0.5)

    await asyncio.to_thread(sign_in, browser, stack)
    rows = wait(browser, lambda d: [r.text for r in css(d, "#fleet-rows tr[data-device]")] or None)
    assert any("console-1" in r for r in rows) and any("console-2" in r for r in rows)
    browser.save_screenshot(str(shots / "fleet.png"))

    search = css(browser, "#fleet-search")[0]
    search.send_keys("console-2")
    wait(browser, lambda d: [r.get_attribute("data-device") for r in css(d, "#fleet-rows tr[data-device]")] == ["console-2"])
    search.clear()

    browser.get(base(stack) + "/#/devices/console-1")
    wait(browser, lambda d: css(d, "#latest-rows tr[data-metric=temp]"))
    chart = wait(browser, lambda d: [c for c in css(d, "#device-chart") if int(c.get_attribute("data-points") or 0) > 0])
    wait(browser, lambda d: css(d, "#device-chart canvas"), timeout=15)  # uPlot is imported on first use
    assert int(chart[0].get_attribute("data-points")) >= 1
    assert "24" in css(browser, "#latest-rows tr[data-metric=temp]")[0].text  # the last value published
    browser.save_screenshot(str(shots / "device.png"))


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
async def test_an_alert_appears_live_and_is_acknowledged(stack, browser, shots):
    r = stack.http.post("/api/v1/customer/alert-rules", json={
        "name": "console hot", "metric": "heat", "operator": "GT", "threshold": 50, "severity": "critical",
        "device_ids": ["console-hot"]})
    assert r.status_code == 201, r.text
    secret = stack.create_device("console-hot")
    await asyncio.to_thread(sign_in, browser, stack)
    browser.get(base(stack) + "/#/alerts")
    wait(browser, lambda d: css(d, "#alert-rows"))
    wait(browser, lambda d: any(e.text == "live" for e in css(d, "#live-state")), timeout=15)
    # the node is shared by the e2e package: other tests' alerts may already be listed
    before = {r.get_attribute("data-alert") for r in css(browser, "#alert-rows tr[data-alert]")}

    await publish(stack, "console-hot", secret, [{"heat": 99.0}])
    new = await asyncio.to_thread(wait, browser, lambda d: [  # no reload
        r for r in css(d, "#alert-rows tr[data-alert]") if r.get_attribute("data-alert") not in before])
    alert_id = new[0].get_attribute("data-alert")
    browser.save_screenshot(str(shots / "alerts.png"))
    css(browser, f"#alert-rows tr[data-alert='{alert_id}'] button.ack")[0].click()  # cookie + CSRF token
    await asyncio.to_thread(wait, browser, lambda d: not css(d, f"#alert-rows tr[data-alert='{alert_id}']"))
    assert stack.http.get(f"/api/v1/customer/alerts/{alert_id}").json()["status"] == "ACKNOWLEDGED"


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
async def test_build_a_dashboard_with_two_widgets_and_reload_it(stack, browser, shots):
    from selenium.webdriver.support.ui import Select

    await asyncio.to_thread(sign_in, browser, stack)
    browser.get(base(stack) + "/#/dashboards")
    name = wait(browser, lambda d: css(d, "#new-dashboard-name"))[0]
    name.send_keys("Console e2e")
    css(browser, "#new-dashboard button[type=submit]")[0].click()
    wait(browser, lambda d: css(d, "#add-widget"))

    Select(css(browser, "#widget-type")[0]).select_by_value("device_count")
    css(browser, "#widget-title")[0].send_keys("Devices")
    css(browser, "#add-widget-submit")[0].click()
    wait(browser, lambda d: len(css(d, "[data-widget]")) == 1)
    Select(css(browser, "#widget-type")[0]).select_by_value("line_chart")
    css(browser, "#widget-title")[0].send_keys("Temperature")
    css(browser, "#widget-metric")[0].send_keys("temp")
    css(browser, "#add-widget-submit")[0].click()
    wait(browser, lambda d: len(css(d, "[data-widget]")) == 2)

    # layout editor: make the chart wider, move it first, save
    css(browser, "#edit-layout")[0].click()
    chart = wait(browser, lambda d: css(d, "[data-type=line_chart]"))[0]
    chart.find_element("css selector", "button.wider").click()
    chart = css(browser, "[data-type=line_chart]")[0]
    chart.find_element("css selector", "button.up").click()
    css(browser, "#save-layout")[0].click()
    wait(browser, lambda d: css(d, "#save-layout") and not css(d, "#save-layout")[0].is_enabled())

    browser.refresh()
    cards = wait(browser, lambda d: len(css(d, "[data-widget]")) == 2 and css(d, "[data-widget]"))
    assert [c.get_attribute("data-type") for c in cards] == ["line_chart", "device_count"]
    assert "span 7" in cards[0].get_attribute("style")
    assert wait(browser, lambda d: css(d, "[data-type=device_count] .big"))[0].text.isdigit()
    browser.save_screenshot(str(shots / "dashboard.png"))
