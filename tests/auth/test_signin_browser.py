"""A person signs in on the chat page through the real provider's login page, in
headless Chromium: the real redirects there and back, a question answered (the chat
POST carries the CSRF token), feedback given, then signed out at the provider too."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from app.components import Components
from app.main import create_app
from app.settings import Settings
from tests.auth.conftest import Ports
from tests.auth.provider import USERS, Provider
from tests.conftest import serve_in_thread
from tests.test_web_browser import (
    ARTIFACTS,
    PAGE_TIMEOUT_S,
    QUESTION,
    _browser_problems,
    _rate,
    _wait_answer,
    driver,
)

pytestmark = pytest.mark.browser
__all__ = ["driver"]  # the browser fixture, shared with the chat page's tests


@pytest.fixture(scope="module")
def signin_server(
    components: Components, signin_settings: Settings, provider: Provider, ports: Ports
) -> Iterator[str]:
    """The app with sign-in, behind uvicorn on the port the provider knows."""
    yield from serve_in_thread(create_app(signin_settings, components), ports.live)


def _shown(drv, selector: str) -> bool:
    return any(e.is_displayed() for e in drv.find_elements(By.CSS_SELECTOR, selector))


@pytest.mark.slow  # waits for the real model's answer
def test_sign_in_through_the_provider_ask_rate_and_sign_out(driver, signin_server: str) -> None:
    base = signin_server
    driver.delete_all_cookies()
    driver.get(base + "/")
    # No key is asked for: a sign-in link instead.
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: _shown(d, "#signin-panel #sign-in"), message="no sign-in prompt"
    )
    assert not _shown(driver, "#key-form")
    os.makedirs(ARTIFACTS, exist_ok=True)
    driver.save_screenshot(os.path.join(ARTIFACTS, "signin-prompt.png"))
    driver.find_element(By.ID, "sign-in").click()

    # The provider's own login page.
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.find_elements(By.ID, "login"), message="the provider's login page"
    )
    assert driver.current_url.startswith("http://127.0.0.1:")
    assert base not in driver.current_url
    driver.find_element(By.ID, "login").send_keys("alice")
    driver.find_element(By.ID, "password").send_keys(USERS["alice"]["password"])
    driver.find_element(By.ID, "sign-in").click()

    # Back on docchat, signed in.
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.current_url.startswith(base) and _shown(d, "#who"),
        message="not back on docchat, signed in",
    )
    assert driver.find_element(By.ID, "who").text == "Signed in as Alice Support"
    assert _shown(driver, "#sign-out")
    assert not _shown(driver, "#key-form")
    assert not _shown(driver, "#signin-panel")
    # The session cookie is out of the page's reach (HttpOnly).
    assert "docchat_session" not in driver.execute_script("return document.cookie;")
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.find_element(By.ID, "chat-form").get_attribute("data-state") == "idle"
    )

    box = driver.find_element(By.ID, "question")
    box.send_keys(QUESTION)
    box.send_keys(Keys.ENTER)
    answer = _wait_answer(driver)  # fails with the page's error (a 403 without the token)
    assert answer.find_element(By.CSS_SELECTOR, ".msg-body").text.strip()
    _rate(driver, answer, "up")
    assert _browser_problems(driver) == []
    driver.save_screenshot(os.path.join(ARTIFACTS, "signed-in.png"))

    # Sign out: docchat's session ends, then the provider's (its confirmation page).
    driver.find_element(By.ID, "sign-out").click()
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.find_elements(By.ID, "logout-yes"), message="the provider's logout page"
    )
    driver.find_element(By.ID, "logout-yes").click()
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.current_url.startswith(base) and _shown(d, "#signin-panel #sign-in"),
        message="not back on docchat, signed out",
    )
    assert not _shown(driver, "#who")
    assert _browser_problems(driver) == []
