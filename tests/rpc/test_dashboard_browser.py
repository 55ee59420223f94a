"""The worker dashboard in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by ``.ci/run``) loads ``/`` from a running worker, the checks
read what the page shows, a deployer signs in with ``phat keys sign-in`` and reads their logs,
and screenshots are saved (under the test's tmp dir, and ``$PHAT_ARTIFACTS`` if set)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from phat_runtime.cli.main import main
from phat_runtime.crypto.accounts import to_ss58
from phat_runtime.pink.logs import LogLevel
from phat_runtime.types import ExecutionMode

from .test_dashboard import EVIL, FLIPPER, evil_bundle

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary: apt-get install chromium "
                                "chromium-driver (.ci/run installs both)")
#: What the probe of this machine found Chromium needs headless here (no sandbox as root, no
#: background connections to a network that is not there).
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000"]


@pytest.fixture()
def chrome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    driver_path = shutil.which("chromedriver")
    assert driver_path is not None, "chromium is here but chromedriver is not: apt-get install chromium-driver"
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let selenium look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: WebDriver, path: Path) -> Path:
    """The whole page as a PNG, also copied to $PHAT_ARTIFACTS if set."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(int(height) + 40, 6000))
    driver.execute_script("window.scrollTo(0, 0)")
    assert driver.save_screenshot(str(path)), f"no screenshot at {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artifacts = os.environ.get("PHAT_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / path.name)
    return path


def wait_for(driver: WebDriver, element_id: str) -> WebElement:
    try:
        found: WebElement = WebDriverWait(driver, 30).until(
            expected_conditions.presence_of_element_located((By.ID, element_id)))
    except TimeoutException:
        raise AssertionError(f"no #{element_id} on the page:\n{driver.page_source[-3000:]}") from None
    return found


def submit(driver: WebDriver, form_action: str) -> None:
    """Click a form's button and wait until the page it leads to has loaded."""
    button = driver.find_element(By.CSS_SELECTOR, f"form[action='{form_action}'] button")
    button.click()
    WebDriverWait(driver, 30).until(_gone(button))
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _gone(element):  # type: ignore[no-untyped-def]
    """The old page's element is gone. Chromium may answer "Node with given id does not belong
    to the document" (a WebDriverException) instead of a stale-element error while the new page
    replaces the old one: both mean the same."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def check(_driver: WebDriver) -> bool:
        try:
            element.is_enabled()
        except (StaleElementReferenceException, WebDriverException):
            return True
        return False

    return check


def section(driver: WebDriver, name: str) -> str:
    text: str = driver.find_element(By.ID, name).text
    return text


def test_dashboard_in_chromium(served, chrome: WebDriver, alice, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    worker, client = served
    flipper = client.deploy(FLIPPER, "new", [True], signer=alice)
    flipper.transact("flip", signer=alice)
    flipper.query("flip", signer=alice, value=1)  # traps: "unpayable" in flipper's logs
    evil = client.deploy(evil_bundle(tmp_path), "new", [], signer=alice)
    worker.cluster.services.logs.append(evil.address, LogLevel.WARN, "log " + EVIL, mode=ExecutionMode.QUERY)
    info = worker.info()

    chrome.get(client.url + "/")
    assert "phat_runtime worker" in chrome.title and "SIMULATED" in chrome.title
    banner = chrome.find_element(By.ID, "simulated")
    assert banner.is_displayed() and "SIMULATED TEE — development only, NOT SECURE." in banner.text
    assert to_ss58(worker.identity.public_key) in section(chrome, "identity")
    assert info["identity"] in section(chrome, "identity")
    assert "Simulated (no hardware)" in section(chrome, "attestation")
    contracts = section(chrome, "contracts")
    assert "flipper" in contracts and to_ss58(flipper.address) in contracts and to_ss58(alice.public_key) in contracts
    newest = chrome.find_elements(By.CSS_SELECTOR, "#blocks tr")[1].text  # under the header row
    assert newest.startswith(str(info["block"])) and info["state_root"] in newest
    # The injected name is shown as text and did nothing.
    assert EVIL in contracts
    assert chrome.execute_script("return document.scripts.length") == 0
    assert chrome.execute_script("return document.querySelectorAll('main img').length") == 0
    assert chrome.execute_script("return window.__pwned === undefined") is True
    screenshot(chrome, tmp_path / "dashboard.png")

    # Sign in as alice: the page gives a text, `phat keys sign-in` signs it, the form takes it.
    submit(chrome, "/dashboard/challenge")
    text = wait_for(chrome, "sign-in-text").text
    capsys.readouterr()
    assert main(["keys", "sign-in", text, "--suri", "alice"]) == 0
    printed = capsys.readouterr().out
    account = re.search(r"account:\s+(\S+)", printed)[1]  # type: ignore[index]
    signature = re.search(r"signature:\s+(0x[0-9a-f]+)", printed)[1]  # type: ignore[index]
    assert account == to_ss58(alice.public_key)
    chrome.find_element(By.NAME, "account").send_keys(account)
    chrome.find_element(By.NAME, "signature").send_keys(signature)
    submit(chrome, "/dashboard/sign-in")
    logs = section(chrome, "logs")
    assert f"Signed in as {account}" in logs
    assert "unpayable" in logs and "log " + EVIL in logs
    assert chrome.execute_script("return document.scripts.length") == 0
    assert chrome.execute_script("return window.__pwned === undefined") is True
    cookies = {c["name"]: c for c in chrome.get_cookies()}
    assert cookies["phat_dashboard_session"]["httpOnly"] is True
    assert cookies["phat_dashboard_session"]["sameSite"] == "Strict"
    assert chrome.execute_script("return document.cookie") == ""  # not readable by page scripts
    screenshot(chrome, tmp_path / "dashboard-signed-in.png")

    submit(chrome, "/dashboard/sign-out")
    assert "unpayable" not in section(chrome, "logs")
