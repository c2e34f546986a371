"""End-to-end browser tests for the chat page and the source viewer.

Drives Debian's headless Chromium through selenium against the real app
(``live_server`` fixture from ``tests/conftest.py``, serving the "Acme Widget
Server" fixture corpus).

DOM hooks used (kept stable by ``app/web/static/chat.js`` / ``source.js``):

* ``#chat-form[data-state]``: ``loading`` (fetching history), ``streaming``
  (an answer is being received) or ``idle``.
* ``#question`` textarea, ``#send`` button, ``#new-conversation`` button.
* ``#messages > .msg.user`` / ``.msg.assistant``; a finished answer has class
  ``done``, a failed one ``error`` (message in ``.msg-error``), an answer not
  based on the docs ``notice``. Answer text is in ``.msg-body``, citations are
  ``.citations li a``.
* Source page: ``body[data-state]`` is ``loading`` / ``ready`` / ``error``;
  chunks are ``#chunks > .chunk#chunk-<ord>``; the one named in the URL hash
  gets class ``highlight``.
* ``window.docchat.renderMarkdown(text) -> Node`` (and ``renderCitations``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip(
        f"headless browser tests need Debian's chromium and chromedriver "
        f"({CHROMIUM}, {CHROMEDRIVER}); install with: apt-get install chromium chromium-driver",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.browser

STORAGE_KEY = "docchat.conversation_id"
QUESTION = "What port does the widget server listen on by default?"
ANSWER_TIMEOUT_S = 120  # the real model is slow
PAGE_TIMEOUT_S = 30

CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
)


@pytest.fixture(scope="module")
def driver():
    profile = tempfile.mkdtemp(prefix="docchat-chrome-")
    options = webdriver.ChromeOptions()
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(PAGE_TIMEOUT_S)
    drv.set_script_timeout(PAGE_TIMEOUT_S)
    try:
        yield drv
    finally:
        try:
            drv.quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)


# --------------------------------------------------------------------------- helpers


def _browser_problems(drv) -> list[str]:
    """CSP violations and uncaught script errors logged since the last call."""
    try:
        entries = drv.get_log("browser")
    except WebDriverException:  # pragma: no cover - logging not supported
        return []
    problems = []
    for entry in entries:
        message = entry.get("message", "")
        source = entry.get("source", "")
        csp_violation = "Content Security Policy" in message or source == "security"
        script_error = source == "javascript" and entry.get("level") == "SEVERE"
        if csp_violation or script_error:
            problems.append(message)
    return problems


def _wait_idle(drv, timeout=PAGE_TIMEOUT_S):
    WebDriverWait(drv, timeout).until(
        lambda d: d.find_element(By.ID, "chat-form").get_attribute("data-state") == "idle",
        message="chat form never became idle",
    )


def _open_fresh_chat(drv, base_url):
    drv.get(base_url + "/")
    drv.execute_script("window.localStorage.clear();")
    drv.get(base_url + "/")
    _wait_idle(drv)
    assert drv.find_elements(By.CSS_SELECTOR, "#messages .msg") == []


def _citation_links(message):
    return [
        (a.get_attribute("href") or "", a.text)
        for a in message.find_elements(By.CSS_SELECTOR, ".citations li a")
    ]


def _guide_links(message):
    return [
        (href, text)
        for href, text in _citation_links(message)
        if "/sources/" in href and "guide.md" in text
    ]


def _stored_id(drv):
    return drv.execute_script("return window.localStorage.getItem(arguments[0]);", STORAGE_KEY)


def _norm(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- tests


@pytest.mark.slow  # waits for the real model's answer
def test_chat_streams_answer_with_citations_survives_reload_and_opens_source(driver, live_server):
    base = live_server.rstrip("/")
    _open_fresh_chat(driver, base)
    assert driver.find_element(By.CSS_SELECTOR, "header h1").text == "docchat"

    box = driver.find_element(By.ID, "question")
    box.send_keys(QUESTION)
    box.send_keys(Keys.ENTER)  # Enter sends

    # The question is shown immediately, then an assistant message finishes.
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#messages .msg.user"),
        message="question was not added to the conversation",
    )
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(
        lambda d: d.find_elements(
            By.CSS_SELECTOR, "#messages .msg.assistant.done, #messages .msg.assistant.error"
        ),
        message=f"no finished answer within {ANSWER_TIMEOUT_S}s",
    )
    _wait_idle(driver)
    assistant = driver.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant")[-1]
    classes = assistant.get_attribute("class").split()
    if "error" in classes:
        errors = assistant.find_elements(By.CSS_SELECTOR, ".msg-error")
        pytest.fail("answer failed: " + (errors[0].text if errors else assistant.text))
    assert "done" in classes

    question_shown = driver.find_element(By.CSS_SELECTOR, "#messages .msg.user .msg-body").text
    assert _norm(question_shown) == _norm(QUESTION)
    answer_text = assistant.find_element(By.CSS_SELECTOR, ".msg-body").text
    assert answer_text.strip(), "answer is empty"
    assert driver.find_element(By.ID, "send").is_enabled()

    links = _citation_links(assistant)
    guide = _guide_links(assistant)
    assert guide, f"no citation of guide.md linking to /sources/: {links}"
    for _href, text in links:  # "title — section (source) 0.71"-style entries carry a score
        assert text
    scores = [
        s.text for s in assistant.find_elements(By.CSS_SELECTOR, ".citations .citation-score")
    ]
    assert all(len(s.split(".")[-1]) == 2 for s in scores), scores

    conversation_id = _stored_id(driver)
    assert conversation_id, "conversation id was not stored in localStorage"
    assert _browser_problems(driver) == []

    # ---- reload: the conversation comes back from /api/conversations/{id}
    driver.refresh()
    _wait_idle(driver)
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant.done"),
        message="conversation was not restored after reload",
    )
    users = driver.find_elements(By.CSS_SELECTOR, "#messages .msg.user .msg-body")
    assistants = driver.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant.done")
    assert [_norm(u.text) for u in users] == [_norm(QUESTION)]
    assert len(assistants) == 1
    restored = assistants[0]
    assert _norm(restored.find_element(By.CSS_SELECTOR, ".msg-body").text) == _norm(answer_text)
    assert sorted(_citation_links(restored)) == sorted(links)
    restored_guide = _guide_links(restored)
    assert restored_guide
    assert _stored_id(driver) == conversation_id
    assert _browser_problems(driver) == []

    # ---- follow the citation to the source viewer
    href = restored_guide[0][0]
    link = next(
        a
        for a in restored.find_elements(By.CSS_SELECTOR, ".citations li a")
        if a.get_attribute("href") == href
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", link)
    link.click()
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: urlsplit(d.current_url).path.startswith("/sources/"),
        message="citation did not open the source page",
    )
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: (
            d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("ready", "error")
        ),
        message="source page did not finish loading",
    )
    body = driver.find_element(By.TAG_NAME, "body")
    assert body.get_attribute("data-state") == "ready", driver.find_element(By.ID, "main").text
    chunks = driver.find_elements(By.CSS_SELECTOR, "#chunks .chunk")
    assert chunks, "source page shows no chunks"
    assert all((c.get_attribute("id") or "").startswith("chunk-") for c in chunks)
    assert "7421" in driver.find_element(By.ID, "chunks").text
    assert "guide.md" in driver.find_element(By.ID, "doc-source").text

    fragment = urlsplit(href).fragment
    if fragment:
        highlighted = driver.find_elements(By.CSS_SELECTOR, ".chunk.highlight")
        assert [h.get_attribute("id") for h in highlighted] == [fragment]
    assert _browser_problems(driver) == []


HOSTILE = (
    'Before <img src=x onerror="window.__pwned=1"> middle\n'
    "<script>window.__pwned=2</script>\n"
    "\n"
    "- **<b>bold</b>** item with `<i>code</i>`\n"
    "- [click](javascript:window.__pwned=3)\n"
    "\n"
    "```html\n"
    '<img src=y onerror="window.__pwned=4">\n'
    "```\n"
    'after <svg onload="window.__pwned=5"></svg>'
)


def test_render_markdown_never_interprets_html(driver, live_server):
    base = live_server.rstrip("/")
    _open_fresh_chat(driver, base)
    driver.execute_script(
        """
        const node = window.docchat.renderMarkdown(arguments[0]);
        const host = document.createElement('div');
        host.id = 'xss-probe';
        host.appendChild(node);
        const cites = window.docchat.renderCitations([
          {n: 1, source: '<img src=z onerror="window.__pwned=6">', title: '<b>t</b>', section: 's',
           score: 0.5, document_id: 'd', chunk: 0, url: 'javascript:window.__pwned=7'}
        ]);
        if (cites) host.appendChild(cites);
        document.getElementById('messages').appendChild(host);
        """,
        HOSTILE,
    )
    time.sleep(1.0)  # give any (wrongly) created <img> a chance to fail and fire onerror

    assert driver.execute_script("return window.__pwned;") is None
    probe = driver.find_element(By.ID, "xss-probe")
    dangerous = driver.execute_script(
        "const sel = 'img,script,svg,iframe,object,embed,b,i,[onerror],[onload]';"
        "return Array.from(arguments[0].querySelectorAll(sel)).map(e => e.outerHTML);",
        probe,
    )
    assert dangerous == []
    text = probe.text
    assert '<img src=x onerror="window.__pwned=1">' in text
    assert "<script>window.__pwned=2</script>" in text
    assert '<img src=y onerror="window.__pwned=4">' in text
    assert "[click](javascript:window.__pwned=3)" in text
    # the supported Markdown subset still works
    assert probe.find_element(By.CSS_SELECTOR, "strong").text == "<b>bold</b>"
    assert probe.find_element(By.CSS_SELECTOR, "li code").text == "<i>code</i>"
    assert len(probe.find_elements(By.CSS_SELECTOR, "ul > li")) == 2
    assert "onerror" in probe.find_element(By.CSS_SELECTOR, "pre code").text
    # the only link is the (sanitised) citation, never a javascript: URL
    hrefs = [a.get_attribute("href") or "" for a in probe.find_elements(By.TAG_NAME, "a")]
    assert all(not h.lower().startswith("javascript:") for h in hrefs), hrefs
    assert all(urlsplit(h).path.startswith("/sources/") for h in hrefs), hrefs
    assert _browser_problems(driver) == []


def test_unknown_stored_conversation_is_forgotten(driver, live_server):
    base = live_server.rstrip("/")
    _open_fresh_chat(driver, base)
    driver.execute_script(
        "window.localStorage.setItem(arguments[0], arguments[1]);",
        STORAGE_KEY,
        f"missing-{uuid.uuid4().hex}",
    )
    driver.refresh()
    _wait_idle(driver)
    assert _stored_id(driver) is None
    assert driver.find_elements(By.CSS_SELECTOR, "#messages .msg") == []
    assert driver.find_element(By.ID, "send").is_enabled()
