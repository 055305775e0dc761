"""Headless Debian Chromium driven by selenium, against `cityops api` in a child process on the
session's database: the fixtures and small waits every browser test uses.

Without chromium and chromedriver the `browser` fixture skips with the reason
(`scripts/system-deps.sh` installs them as root); under CITYOPS_TEST_STRICT=1 it fails.
Screenshots go to tests/artifacts/.

Accessibility: `assert_accessible` runs axe-core (tests/browser/package.json, installed by
`make` with npm ci) for WCAG 2.2 A and AA; `chromium(..., NARROWEST)` is a browser 320 CSS px
wide (WCAG 1.4.10 reflow); `tab_through` presses Tab and says where focus went, with or
without a visible focus indicator, for the keyboard-only checks.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.api import api_server
from cityops.storage import Database
from tests.conftest import skip_or_fail

ARTIFACTS = Path(__file__).parent / "artifacts"
PHONE_WIDTH = 360
NARROWEST = 320              # WCAG 2.2 1.4.10 Reflow: 320 CSS px wide without scrolling sideways
AXE = Path(__file__).parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
FAILING_IMPACTS = ("serious", "critical")


def _binary(name: str) -> str | None:
    return shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)


def chromium(tmp_path_factory: pytest.TempPathFactory, width: int = PHONE_WIDTH) -> Iterator[WebDriver]:
    """Headless Chromium emulating a phone `width` CSS px wide, with its console log kept."""
    chromium, chromedriver = _binary("chromium"), _binary("chromedriver")
    if chromium is None or chromedriver is None:
        skip_or_fail("no chromium/chromedriver (apt-get install chromium chromium-driver, "
                     "or run scripts/system-deps.sh as root): browser tests skipped")
    assert chromium is not None and chromedriver is not None
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=420,900"):
        options.add_argument(arg)
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": width, "height": 780,
                                                                          "pixelRatio": 2.0}})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=chromedriver, log_output=str(tmp_path_factory.mktemp("chromedriver") / "log"))
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except WebDriverException as exc:
        skip_or_fail(f"chromium cannot start on this machine: {exc.msg}")
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium at a phone's width, with its console log kept."""
    yield from chromium(tmp_path_factory)


@pytest.fixture(scope="module")
async def site(db: Database, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The API and pages as `cityops api` serves them, on the session's (migrated) database,
    over plain http on this machine as the demo does (so the cookie is not Secure)."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    env = {"CITYOPS_ACCOUNTS__INSECURE_LOCALHOST": "true",
           "CITYOPS_CASES__PHOTO_DIR": str(tmp_path_factory.mktemp("case-photos"))}  # householders' photos
    async with api_server(database_url, log, env=env) as api:
        yield api.url


def wait_for(browser: WebDriver, what: str, condition: Any, timeout_s: float = 15.0) -> Any:
    try:
        return WebDriverWait(browser, timeout_s, poll_frequency=0.05).until(condition)
    except TimeoutException:
        screenshot(browser, "timeout")
        error = browser.find_elements(By.CSS_SELECTOR, ".error")
        shown = " | ".join(e.text for e in error if e.text)
        raise AssertionError(f"waited {timeout_s:.0f} s for {what} at {browser.current_url}; "
                             f"page errors: {shown or 'none'}; console: {console(browser)}") from None


def ready(browser: WebDriver) -> bool:
    return bool(browser.execute_script("return document.body && document.body.dataset.ready === 'yes'"))


def console(browser: WebDriver) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(browser: WebDriver, name: str) -> Path:
    """The whole page (not only the viewport) as tests/artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    metrics = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def fits_the_phone(browser: WebDriver) -> bool:
    return bool(browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"))


def sign_in(browser: WebDriver, site: str, start: str, username: str, password: str) -> None:
    """Open a page while signed out: it sends us to the login form; sign in there."""
    browser.delete_all_cookies()
    browser.get(site + start)
    wait_for(browser, "the login page", lambda b: "/login" in b.current_url
             and b.find_elements(By.ID, "username"))
    browser.get_log("browser")  # the 401 that sent us here is expected; start the console log afresh
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, f"{start} after signing in", lambda b: b.current_url.endswith(start) and ready(b))


# --- accessibility --------------------------------------------------------------------------

_RUN_AXE = """
const [tags, done] = arguments;
axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]}).then(
  (r) => done({violations: r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                                                     nodes: v.nodes.map((n) => n.target.join(" "))}))}),
  (e) => done({error: String(e)}));
"""


def axe_violations(browser: WebDriver) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.2 A/AA violations on the page as it is now (every impact)."""
    if not AXE.exists():
        skip_or_fail(f"axe-core is not installed ({AXE}): run `make pytest`, or npm ci --prefix tests/browser")
    if not browser.execute_script("return typeof window.axe === 'object'"):
        browser.execute_script(AXE.read_text(encoding="utf-8"))
    browser.set_script_timeout(60)
    result: dict[str, Any] = browser.execute_async_script(_RUN_AXE, list(WCAG_TAGS))
    if "error" in result:
        raise AssertionError(f"axe-core could not run on {browser.current_url}: {result['error']}")
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def assert_accessible(browser: WebDriver, name: str) -> None:
    """No serious or critical WCAG 2.2 A/AA violation (axe-core) on the page as it is now; a
    failure lists each rule with its impact, the elements' selectors and the rule's help page,
    and keeps a screenshot as tests/artifacts/axe-<name>.png."""
    failing = [v for v in axe_violations(browser) if v["impact"] in FAILING_IMPACTS]
    if failing:
        screenshot(browser, f"axe-{name}")
        lines = [f"- {v['id']} ({v['impact']}): {v['help']}; {v['helpUrl']}\n    at "
                 + "\n    at ".join(v["nodes"][:8]) + (f"\n    ... and {len(v['nodes']) - 8} more"
                                                      if len(v["nodes"]) > 8 else "")
                 for v in failing]
        raise AssertionError(f"{name} ({browser.current_url}): {len(failing)} serious or critical accessibility "
                             "violations (axe-core, WCAG 2.2 A/AA):\n" + "\n".join(lines))


_FOCUSED = """
const el = document.activeElement;
if (!el || el === document.body) return null;
const style = getComputedStyle(el);
const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
const box = el.getBoundingClientRect();
return {visible_indicator: outline || style.boxShadow !== "none",
        on_screen: box.width > 0 && box.height > 0 && box.right > 0 && box.bottom > 0
                   && box.left < window.innerWidth,
        key: el.id || el.getAttribute("href") || el.textContent.trim().slice(0, 40)};
"""

_CONTROLS = """
return [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
  .filter((el) => el.tabIndex >= 0 && !el.disabled && !el.closest('[hidden], [inert]')
                  && getComputedStyle(el).visibility !== 'hidden' && el.getClientRects().length > 0)
  .map((el) => el.id || el.getAttribute('href') || el.textContent.trim().slice(0, 40));
"""


def controls(browser: WebDriver) -> list[str]:
    """The page's keyboard-reachable controls in document order (id, else href, else text)."""
    found: list[str] = browser.execute_script(_CONTROLS)
    return found


def from_the_top(browser: WebDriver) -> None:
    """Move the keyboard's starting point to the top of the page (the next Tab: the first control)."""
    browser.execute_script("const b = document.body; b.setAttribute('tabindex', '-1'); b.focus(); "
                           "b.removeAttribute('tabindex'); window.scrollTo(0, 0);")


def tab_through(browser: WebDriver, presses: int = 60) -> list[dict[str, Any]]:
    """Press Tab from the top of the page until focus comes round again (or `presses`): each
    stop's element, whether it shows a focus indicator and whether it is on screen."""
    from_the_top(browser)
    stops: list[dict[str, Any]] = []
    for _ in range(presses):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        focused = browser.execute_script(_FOCUSED)
        if focused is None or (stops and focused["key"] == stops[0]["key"]):
            break
        stops.append(focused)
    return stops


def describe(stops: list[dict[str, Any]]) -> str:
    """Where Tab went, for a failure's message."""
    return json.dumps([s["key"] for s in stops])
