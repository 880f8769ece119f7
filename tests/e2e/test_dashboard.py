"""The dashboard in a real headless Chromium: a push made during the test shows up on the
page without a reload (Server-Sent Events), failures show their error."""

from __future__ import annotations

import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import ARTIFACTS
from tests.support.lab import running_images, wait_for

pytestmark = pytest.mark.e2e

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1360,900",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "dashboard-last.png"))
    driver.quit()


def text_of(driver, css: str) -> str:
    """The visible text of all matches, read in one step (the page re-renders live)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map((e) => e.innerText).join(' ')",
        css,
    )


def test_dashboard_shows_a_push_live_without_reload(
    docker_client, registry, images, autodock, make_service, notify_port, unique, browser
):
    repo, svc = f"web/ui-{unique}", f"web_{unique}"
    first = images.publish(repo, "stage")
    make_service(svc, f"{registry.addr}/{repo}:stage@{first}")
    wait_for(lambda: running_images(docker_client, svc), timeout=90, what="first task running")
    failing = ["sh", "-c", "echo 'migrate: relation \"users\" does not exist' >&2; exit 2"]
    server = autodock(
        {
            "rules": [
                {"name": f"deploy-{svc}", "repo": repo, "tag": "stage", "services": [svc]},
                {"name": "db-migrate", "repo": f"web/migrate-{unique}", "command": failing},
            ],
            "discovery": {"labels": False},
            "api": {"token": "ui-token"},
        },
        port=notify_port,
    )
    body = {"repo": f"web/migrate-{unique}", "tag": "v1"}
    assert server.post("/hooks/generic", body).status_code == 202
    server.wait_final(1, target="db-migrate: sh")

    browser.get(server.url + "/")
    wait = WebDriverWait(browser, 30, poll_frequency=0.2)
    row = f'tr[data-service="{svc}"]'
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
    assert first.split(":")[1][:12] in text_of(browser, row)
    assert "deploy-" + svc in text_of(browser, row)
    # The failure is expanded with its error and a retry button.
    wait.until(lambda d: 'relation "users" does not exist' in text_of(d, ".t-failed .t-error"))
    assert browser.find_elements(By.CSS_SELECTOR, '.t-failed button[data-act="retry"]')
    wait.until(lambda d: "live" in text_of(d, "#live"))
    browser.execute_script("window.__sameDocument = 'yes'")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    second = images.publish(repo, "stage")  # the registry notifies autodock
    short = second.split(":")[1][:12]
    progress_seen = []

    def updated(d):
        active = text_of(d, "#active")
        if "tasks updated" in active and not any("tasks updated" in p for p in progress_seen):
            d.save_screenshot(str(ARTIFACTS / "dashboard-in-progress.png"))
        progress_seen.append(active)
        return short in text_of(d, row) and "succeeded" in text_of(d, row)

    WebDriverWait(browser, 90, poll_frequency=0.1).until(updated)
    assert browser.execute_script("return window.__sameDocument") == "yes"  # no reload
    history = text_of(browser, "#history li:first-child")
    assert svc in history and "succeeded" in history and short in history
    assert any("tasks updated" in p or "running" in p for p in progress_seen), progress_seen[-5:]

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1360, max(900, int(height) + 40))
    path = ARTIFACTS / "dashboard.png"
    assert browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000

    # Actions ask for the token once (kept in sessionStorage) and the page follows live.
    browser.find_element(By.CSS_SELECTOR, f'{row} button[data-act="pause"]').click()
    prompt = WebDriverWait(browser, 10).until(lambda d: d.switch_to.alert)
    prompt.send_keys("ui-token")
    prompt.accept()
    wait.until(lambda d: "paused" in text_of(d, f"{row} .svc-name"))
    assert browser.execute_script("return sessionStorage.getItem('autodock.token')") == "ui-token"
    browser.find_element(By.CSS_SELECTOR, f'{row} button[data-act="resume"]').click()
    wait.until(lambda d: "paused" not in text_of(d, f"{row} .svc-name"))
    assert browser.execute_script("return window.__sameDocument") == "yes"

    # Narrow screens still work (responsive layout), captured for review.
    browser.set_window_size(420, 900)
    assert browser.save_screenshot(str(ARTIFACTS / "dashboard-narrow.png"))


def test_dashboard_approves_a_waiting_deploy(autodock, tmp_path, unique, browser):
    done = tmp_path / "deployed"
    server = autodock(
        {
            "rules": [
                {
                    "name": "prod",
                    "repo": f"web/prod-{unique}",
                    "approval": True,
                    "command": ["touch", str(done)],
                },
            ],
            "discovery": {"labels": False},
            "api": {"token": "ui-token"},
        }
    )
    assert server.post("/hooks/generic", {"repo": f"web/prod-{unique}", "tag": "v2"}).json()[
        "deploys"
    ]
    browser.get(server.url + "/")
    wait = WebDriverWait(browser, 30, poll_frequency=0.2)
    button = '.t-awaiting_approval button[data-act="approve"]'
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, button))
    assert browser.find_elements(By.CSS_SELECTOR, '.t-awaiting_approval button[data-act="reject"]')
    assert not done.exists()
    browser.find_element(By.CSS_SELECTOR, button).click()
    WebDriverWait(browser, 10).until(lambda d: d.switch_to.alert).accept()  # "Deploy #1 now?"
    prompt = WebDriverWait(browser, 10).until(lambda d: d.switch_to.alert)
    prompt.send_keys("ui-token")
    prompt.accept()
    wait.until(lambda d: "succeeded" in text_of(d, "#history li:first-child"))
    assert done.exists()
    (deploy,) = server.deploys()
    assert deploy["status"] == "succeeded" and deploy["progress"] == "approved by dashboard"
