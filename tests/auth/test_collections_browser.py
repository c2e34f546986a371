"""A person of the support group signs in on the chat page through the real provider, in
headless Chromium: the collection picker offers what she may read and nothing else, a
question asked in the runbooks cites them, and her conversation list opens, renames and
deletes her conversation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from app.main import create_app
from tests.auth.conftest import Ports
from tests.auth.provider import USERS, Provider
from tests.auth.test_collections_leak import three_collections
from tests.conftest import Models, serve_in_thread
from tests.test_web_browser import (
    ARTIFACTS,
    PAGE_TIMEOUT_S,
    _browser_problems,
    _wait_answer,
    driver,
)

pytestmark = pytest.mark.browser
__all__ = ["driver"]


def serve_three_collections(root: Path, models: Models, ports: Ports) -> Iterator[str]:
    """Three collections behind uvicorn, on the port the provider knows."""
    components, settings = three_collections(root, models, ports)
    try:
        yield from serve_in_thread(create_app(settings, components), ports.live)
    finally:
        components.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, models: Models, ports: Ports, provider: Provider
) -> Iterator[str]:
    yield from serve_three_collections(tmp_path_factory.mktemp("page"), models, ports)


def sign_in_as(drv, base: str, user: str) -> None:
    """Through the provider's login page, as a person does (cookies of both cleared)."""
    drv.delete_all_cookies()
    drv.get(base + "/")
    drv.execute_script("window.localStorage.clear(); window.sessionStorage.clear();")
    _wait(drv, lambda d: _shown(d, "#signin-panel #sign-in"), "no sign-in prompt")
    drv.find_element(By.ID, "sign-in").click()
    _wait(drv, lambda d: d.find_elements(By.ID, "login"), "the provider's login page")
    drv.find_element(By.ID, "login").send_keys(user)
    drv.find_element(By.ID, "password").send_keys(USERS[user]["password"])
    drv.find_element(By.ID, "sign-in").click()
    _wait(drv, lambda d: d.current_url.startswith(base) and _shown(d, "#who"), "signed in")


def _shown(drv, selector: str) -> bool:
    return any(e.is_displayed() for e in drv.find_elements(By.CSS_SELECTOR, selector))


def _titles(drv) -> list[str]:
    return [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#history-list .history-open")]


def _picked(drv) -> tuple[list[str], str] | None:
    """The picker's values and the chosen one (None while the page replaces them)."""
    try:
        picker = Select(drv.find_element(By.ID, "collection"))
        values = [o.get_attribute("value") for o in picker.options]
        return values, picker.first_selected_option.get_attribute("value")
    except StaleElementReferenceException:
        return None


def _wait(drv, check, message: str) -> None:
    # The page re-renders its lists as they load: an element read a moment before may
    # be gone (stale), which means "not yet", not a failure.
    stale = (StaleElementReferenceException,)
    WebDriverWait(drv, PAGE_TIMEOUT_S, ignored_exceptions=stale).until(check, message=message)


@pytest.mark.slow  # waits for the real model's answer
def test_the_picker_offers_what_she_reads_and_her_conversations_are_hers(
    driver, server: str
) -> None:
    sign_in_as(driver, server, "alice")

    # The picker: the collections of her group and everyone's, never the sales one.
    _wait(driver, lambda d: _shown(d, "#collection"), "no collection picker")
    # The page may load the list again (after sign-in): its options are new elements
    # then, so they are read afresh until the list settles.
    _wait(
        driver,
        lambda d: _picked(d) == (["docs", "support-runbooks"], "docs"),
        "the picker offers docs and support-runbooks, docs chosen",
    )
    picker = Select(driver.find_element(By.ID, "collection"))
    picker.select_by_value("support-runbooks")

    box = driver.find_element(By.ID, "question")
    box.send_keys("How fast must a data loss be escalated?")
    box.send_keys(Keys.ENTER)
    answer = _wait_answer(driver)
    cited = [a.text for a in answer.find_elements(By.CSS_SELECTOR, ".citations li a")]
    assert any("support.md" in c for c in cited), cited

    # Her conversations: listed, renamed, opened again in its collection, deleted.
    driver.find_element(By.ID, "history-toggle").click()
    _wait(driver, lambda d: _titles(d) == ["How fast must a data loss be escalated?"], "listed")
    driver.find_element(By.CSS_SELECTOR, "#history-list .history-action").click()  # Rename
    prompt = driver.switch_to.alert
    prompt.send_keys("Data loss escalation")
    prompt.accept()
    _wait(driver, lambda d: _titles(d) == ["Data loss escalation"], "renamed")
    driver.find_element(By.ID, "new-conversation").click()
    picker = Select(driver.find_element(By.ID, "collection"))
    picker.select_by_value("docs")
    driver.find_element(By.CSS_SELECTOR, "#history-list .history-open").click()
    _wait(
        driver,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant")) == 1,
        "the conversation did not open",
    )
    picker = Select(driver.find_element(By.ID, "collection"))
    assert picker.first_selected_option.get_attribute("value") == "support-runbooks"
    os.makedirs(ARTIFACTS, exist_ok=True)
    driver.save_screenshot(os.path.join(ARTIFACTS, "collections-and-history.png"))
    driver.find_elements(By.CSS_SELECTOR, "#history-list .history-action")[1].click()  # Delete
    driver.switch_to.alert.accept()
    _wait(driver, lambda d: _titles(d) == [], "not deleted")
    assert driver.find_elements(By.CSS_SELECTOR, "#messages .msg") == []
    assert _browser_problems(driver) == []
