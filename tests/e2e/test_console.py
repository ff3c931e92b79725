"""The console in Debian's headless Chromium against a real node: sign in, fleet, a device's chart of
points published over MQTT in the test, an alert appearing live and acknowledged, a dashboard with
two widgets that survives a reload, a dashboard with one widget of every type, each drawn.
Screenshots of the main pages go to <tmp>/screenshots/."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from datetime import datetime, timedelta, timezone
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
    # no background networking: the sandbox has no internet, and the console needs none
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def wait(driver, fn, timeout: float = 30.0):
    """Until `fn` is truthy. A live update may redraw what `fn` was reading: then it is asked again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: fn(d))


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


async def publish(stack, device_id: str, secret: str, values: list[dict], every_s: float = 0) -> None:
    """`values` in order; with `every_s`, stamped that many seconds apart, the last one now."""
    now = datetime.now(timezone.utc)
    async with device_client(stack, device_id, secret) as dev:
        for seq, metrics in enumerate(values, start=1):
            payload = envelope(seq, **metrics)
            if every_s:
                ts = now - timedelta(seconds=every_s * (len(values) - seq))
                payload = json.dumps({**json.loads(payload), "ts": ts.isoformat()}).encode()
            await dev.publish(f"tenant/demo/device/{device_id}/telemetry", payload, qos=1)


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
    wait(browser, lambda d: "24" in css(d, "#latest-rows tr[data-metric=temp]")[0].text)  # the last value published
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
    before = wait(browser, lambda d: ({r.get_attribute("data-alert") for r in css(d, "#alert-rows tr[data-alert]")},))[0]

    await publish(stack, "console-hot", secret, [{"heat": 99.0}])
    new = await asyncio.to_thread(wait, browser, lambda d: [  # no reload
        a for a in (r.get_attribute("data-alert") for r in css(d, "#alert-rows tr[data-alert]")) if a not in before])
    alert_id = new[0]
    browser.save_screenshot(str(shots / "alerts.png"))
    ack = f"#alert-rows tr[data-alert='{alert_id}'] button.ack"
    await asyncio.to_thread(wait, browser, lambda d: css(d, ack)[0].click() or True)  # cookie + CSRF token
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
    cards = wait(browser, lambda d: len(css(d, "[data-widget]")) == 2 and [
        (c.get_attribute("data-type"), c.get_attribute("style")) for c in css(d, "[data-widget]")])
    assert [kind for kind, _ in cards] == ["line_chart", "device_count"]
    assert "span 7" in cards[0][1]
    assert wait(browser, lambda d: css(d, "[data-type=device_count] .big")[0].text).isdigit()
    browser.save_screenshot(str(shots / "dashboard.png"))


# one widget of every type (pulse/domain/dashboards.py WIDGET_CONFIGS), as [type, config, x, y, w, h]
WALL = ["wall-1", "wall-2", "wall-3"]
EVERY_WIDGET = [
    ["kpi_tile", {"metric": "power", "time_range": "1h", "unit": "W"}, 0, 0, 3, 2],
    ["stat_card", {"kpi": "total_devices"}, 3, 0, 3, 2],
    ["gauge", {"metric": "power", "time_range": "1h", "min": 0, "max": 120, "unit": "W"}, 6, 0, 3, 2],
    ["device_count", {}, 9, 0, 3, 2],
    ["line_chart", {"metric": "power", "time_range": "1h", "device_ids": WALL}, 0, 2, 6, 3],
    ["area_chart", {"metric": "load", "time_range": "1h", "group_by": "device"}, 6, 2, 6, 3],
    ["bar_chart", {"metric": "power", "aggregation": "max", "time_range": "1h"}, 0, 5, 6, 3],
    ["scatter", {"x_metric": "power", "y_metric": "load", "time_range": "1h"}, 6, 5, 6, 3],
    ["pie_chart", {"metric": "power", "time_range": "1h"}, 0, 8, 4, 3],
    ["radar", {"metric": "load", "time_range": "1h"}, 4, 8, 4, 3],
    ["table", {"device_ids": WALL, "metrics": ["power", "load"]}, 8, 8, 4, 3],
    ["alert_feed", {"status": "ALL"}, 0, 11, 3, 2],
    ["fleet_status", {}, 3, 11, 3, 2],
    ["fleet_overview", {}, 6, 11, 3, 2],
    ["health_score", {}, 9, 11, 3, 2],
]
DRAWN_AS_CHART = {"gauge", "line_chart", "area_chart", "bar_chart", "scatter", "pie_chart", "radar"}
# every card as {type, text, error, chart}, once each is drawn (a chart: its canvas or svg, or a message)
CARDS_SETTLED = """
const cards = [...document.querySelectorAll('[data-widget]')].map((c) => ({
  type: c.dataset.type, text: c.innerText, error: c.querySelector('.error')?.textContent || null,
  drawn: !!c.querySelector('.widget-body > *'), chart: !!c.querySelector('.widget-body canvas, .widget-body svg')}));
const settled = (c) => c.drawn && (c.chart || c.error || !arguments[0].includes(c.type) || c.text.includes('No data'));
return cards.every(settled) && cards;
"""


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
async def test_a_dashboard_draws_a_widget_of_every_type(stack, browser, shots):
    from pulse.domain.dashboards import WIDGET_TYPES

    assert sorted(t for t, *_ in EVERY_WIDGET) == sorted(WIDGET_TYPES)
    for n, device_id in enumerate(WALL):  # six points 10 minutes apart: power 40/60/80 W and up
        secret = stack.create_device(device_id)
        await publish(stack, device_id, secret, [{"power": 40.0 + 20 * n + i, "load": 0.2 + 0.25 * n + 0.02 * i}
                                                 for i in range(6)], every_s=600)
    query = {"time_range": "1h", "group_by": "device", "device_ids": WALL}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answers = [stack.http.post("/api/v1/customer/analytics/query", json={**query, "metric": m}).json()
                   for m in ("power", "load")]
        if all(a["summary"]["total_points"] == 18 for a in answers):
            break
        await asyncio.sleep(0.5)
    else:
        pytest.fail(f"the published points never reached the analytics query: {answers}")

    r = stack.http.post("/api/v1/customer/dashboards", json={"name": "Every widget"})
    assert r.status_code == 201, r.text
    dashboard_id = r.json()["id"]
    for widget_type, config, x, y, w, h in EVERY_WIDGET:
        r = stack.http.post(f"/api/v1/customer/dashboards/{dashboard_id}/widgets", json={
            "widget_type": widget_type, "title": widget_type.replace("_", " "), "config": config,
            "position": {"x": x, "y": y, "w": w, "h": h}})
        assert r.status_code == 201, r.text

    await asyncio.to_thread(sign_in, browser, stack)
    browser.set_window_size(1400, 1750)  # the whole dashboard in one screenshot
    try:
        browser.get(base(stack) + f"/#/dashboards/{dashboard_id}")
        cards = await asyncio.to_thread(wait, browser, lambda d: len(css(d, "[data-widget]")) == 15 and (
            d.execute_script(CARDS_SETTLED, sorted(DRAWN_AS_CHART))))
        browser.save_screenshot(str(shots / "all_widgets.png"))
    finally:
        browser.set_window_size(1400, 1000)
    by_type = {c["type"]: c for c in cards}
    assert sorted(by_type) == sorted(WIDGET_TYPES)
    assert [c for c in cards if c["error"] or "No view" in c["text"] or "No data" in c["text"]] == []
    assert all(by_type[t]["chart"] for t in DRAWN_AS_CHART)
    assert "\t".join(["wall-3", "ACTIVE", "", "85", "0.80"]) in by_type["table"]["text"]  # the last values published
    assert all(d in by_type["pie_chart"]["text"] for d in WALL)  # the legend: one slice per device
