"""End-to-end browser tests for the chat page and the source viewer.

Drives Debian's headless Chromium through selenium against the real app
(``live_server`` fixture from ``tests/conftest.py``, serving the "Acme Widget
Server" fixture corpus).

DOM hooks used (kept stable by ``app/web/static/chat.js`` / ``source.js``):

* ``#chat-form[data-state]``: ``loading`` (fetching history), ``streaming``
  (an answer is being received), ``idle``, or ``auth`` (waiting for an API key;
  Send is disabled).
* ``#question`` textarea, ``#send`` button, ``#new-conversation`` button.
* ``#messages > .msg.user`` / ``.msg.assistant``; a finished answer has class
  ``done``, a failed one ``error`` (message in ``.msg-error``), an answer not
  based on the docs ``notice``. Answer text is in ``.msg-body``, citations are
  ``.citations li a``.
* Source page: ``body[data-state]`` is ``loading`` / ``ready`` / ``error`` /
  ``auth``; chunks are ``#chunks > .chunk#chunk-<ord>``; the one named in the
  URL hash gets class ``highlight``.
* API key (both pages, when the server has authentication on): on a 401 the
  form ``#key-form`` is shown (``#key-form:not([hidden])``) with the password
  field ``#api-key``; ``#key-error`` says "That key was not accepted." when a
  stored key was refused. The key lives only in
  ``sessionStorage["docchat.api_key"]`` and is sent as ``Authorization: Bearer``.
  ``#forget-key`` (shown only while a key is stored) removes it. A 403 or 429
  shows its message in ``.msg-error`` (chat) or ``#doc-status`` (source page).
* Sign-in (when the server has OpenID Connect configured; tests/auth/test_signin_browser.py):
  no key form; ``#signin-panel`` with the link ``#sign-in`` instead, ``#who`` ("Signed in
  as ...") and ``#sign-out`` in the header once signed in. Changes carry the session's
  CSRF token (``X-CSRF-Token``) from ``/auth/session``.
* Feedback under a finished answer: ``.feedback`` with ``data-state`` ``idle`` /
  ``sending`` / ``saved`` / ``error`` and ``data-rating`` (``up``, ``down`` or empty),
  buttons ``.feedback-up`` / ``.feedback-down`` (``aria-pressed``), then the optional
  comment form ``form.feedback-comment`` (input ``.feedback-comment-input``).
* ``window.docchat.renderMarkdown(text) -> Node`` (and ``renderCitations``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.needs import need_path

CHROMIUM = "/usr/bin/chromium"
# Screenshots a person looks at (kept by the test run, not compared).
ARTIFACTS = os.environ.get(
    "DOCCHAT_TEST_ARTIFACTS", os.path.join(tempfile.gettempdir(), "docchat-screens")
)
CHROMEDRIVER = "/usr/bin/chromedriver"

for _browser_part in (CHROMIUM, CHROMEDRIVER):
    need_path(
        Path(_browser_part),
        "headless browser tests need Debian's chromium and chromedriver "
        "(apt-get install chromium chromium-driver)",
    )

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.browser

STORAGE_KEY = "docchat.conversation_id"
KEY_STORAGE = "docchat.api_key"  # sessionStorage
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
    drv.execute_script("window.localStorage.clear(); window.sessionStorage.clear();")
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


def _wait_answer(drv):
    """Wait for the last answer to finish; fail with its error message if it failed."""
    WebDriverWait(drv, ANSWER_TIMEOUT_S).until(
        lambda d: d.find_elements(
            By.CSS_SELECTOR, "#messages .msg.assistant.done, #messages .msg.assistant.error"
        ),
        message=f"no finished answer within {ANSWER_TIMEOUT_S}s",
    )
    _wait_idle(drv)
    assistant = drv.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant")[-1]
    classes = assistant.get_attribute("class").split()
    if "error" in classes:
        errors = assistant.find_elements(By.CSS_SELECTOR, ".msg-error")
        pytest.fail("answer failed: " + (errors[0].text if errors else assistant.text))
    assert "done" in classes
    return assistant


def _wait_source(drv, states=("ready", "error")):
    WebDriverWait(drv, PAGE_TIMEOUT_S).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in states,
        message="source page did not finish loading",
    )
    return drv.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def _key_form_shown(drv) -> bool:
    return bool(drv.find_elements(By.CSS_SELECTOR, "#key-form:not([hidden])"))


def _wait_key_form(drv, error=""):
    WebDriverWait(drv, PAGE_TIMEOUT_S).until(
        lambda d: _key_form_shown(d) and d.find_element(By.ID, "key-error").text == error,
        message=f"key form (message {error!r}) was not shown",
    )


def _session_key(drv):
    return drv.execute_script("return window.sessionStorage.getItem(arguments[0]);", KEY_STORAGE)


def _key_leaks(drv, key: str) -> list[str]:
    """Places other than sessionStorage where the key shows up (should be none)."""
    return drv.execute_script(
        """
        const key = arguments[0], found = [];
        for (let i = 0; i < window.localStorage.length; i++) {
          const name = window.localStorage.key(i);
          const value = window.localStorage.getItem(name) || '';
          if (name.includes(key) || value.includes(key)) found.push('localStorage:' + name);
        }
        if (document.cookie.includes(key)) found.push('cookie');
        if (window.location.href.includes(key)) found.push('url');
        return found;
        """,
        key,
    )


def _rate(drv, message, rating: str, comment: str = "") -> None:
    """Click a thumb under an answer (and send a comment); wait until it is saved."""
    box = message.find_element(By.CSS_SELECTOR, ".feedback")
    button = box.find_element(By.CSS_SELECTOR, f".feedback-{rating}")
    drv.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    WebDriverWait(drv, PAGE_TIMEOUT_S).until(
        lambda d: box.get_attribute("data-state") in ("saved", "error"),
        message="feedback was not saved",
    )
    status = box.find_element(By.CSS_SELECTOR, ".feedback-status").text
    assert box.get_attribute("data-state") == "saved", status
    assert box.get_attribute("data-rating") == rating
    assert button.get_attribute("aria-pressed") == "true"
    other = "down" if rating == "up" else "up"
    assert (
        box.find_element(By.CSS_SELECTOR, f".feedback-{other}").get_attribute("aria-pressed")
        == "false"
    )
    if comment:
        field = box.find_element(By.CSS_SELECTOR, ".feedback-comment .feedback-comment-input")
        assert field.is_displayed()
        field.send_keys(comment)
        field.send_keys(Keys.ENTER)
        WebDriverWait(drv, PAGE_TIMEOUT_S).until(
            lambda d: box.get_attribute("data-state") == "saved" and "comment" in box.text,
            message="comment was not sent",
        )
        assert not field.is_displayed()


def _stored_feedback(base: str, conversation_id: str, key: str | None = None):
    """The feedback the server holds on the conversation's first answer."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.get(f"{base}/api/conversations/{conversation_id}", headers=headers)
    assert response.status_code == 200
    return response.json()["messages"][1]["feedback"]


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
    assistant = _wait_answer(driver)

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

    # ---- thumbs up: stored on the server
    _rate(driver, assistant, "up")
    assert _stored_feedback(base, conversation_id)["rating"] == "up"

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
    assert restored.find_element(By.CSS_SELECTOR, ".feedback").get_attribute("data-rating") == "up"
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
    assert _wait_source(driver) == "ready", driver.find_element(By.ID, "main").text
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


PASSAGE = (
    "Here is the passage that comes closest, from docs/models.md [1]:\n\n"
    "> ## Rolling back\n"
    ">\n"
    "> ```sh\n"
    "> docchat models rollback   # or POST /api/admin/models/rollback\n"
    "> ```\n"
    ">\n"
    "> **Run `docchat models rollback` to return to the model before.** Two rollbacks walk back.\n"
    ">\n"
    "> | setting | default |\n"
    "> | --- | --- |\n"
    "> | `models.poll_interval_s` | 10 |\n"
    ">\n"
    "> A paragraph the source wrapped at its width: this first line is long enough, and\n"
    "> it goes on here."
)


def test_a_quoted_passage_renders_its_code_table_and_marked_sentence(driver, live_server):
    """The passage shown for an unsupported answer is a Markdown quote: its "> " marks
    used to print as text, and its code, table and bold with it."""
    base = live_server.rstrip("/")
    _open_fresh_chat(driver, base)
    driver.execute_script(
        """
        const host = document.createElement('div');
        host.id = 'passage-probe';
        host.className = 'msg assistant done';
        host.appendChild(window.docchat.renderMarkdown(arguments[0]));
        document.getElementById('messages').appendChild(host);
        """,
        PASSAGE,
    )
    probe = driver.find_element(By.ID, "passage-probe")
    quote = probe.find_element(By.CSS_SELECTOR, "blockquote.md-quote")
    assert ">" not in quote.text  # the quote's marks are not printed
    assert quote.find_element(By.CSS_SELECTOR, ".md-heading").text == "Rolling back"
    assert "docchat models rollback" in quote.find_element(By.CSS_SELECTOR, "pre code").text
    marked = quote.find_element(By.CSS_SELECTOR, "p.md-p strong")  # bold across inline code
    assert marked.text == "Run docchat models rollback to return to the model before."
    assert marked.find_element(By.CSS_SELECTOR, "code").text == "docchat models rollback"
    headers = [th.text for th in quote.find_elements(By.CSS_SELECTOR, "table thead th")]
    assert headers == ["setting", "default"]
    cells = [td.text for td in quote.find_elements(By.CSS_SELECTOR, "table tbody td")]
    assert cells == ["models.poll_interval_s", "10"]
    # The source's wrapping is not a line break inside a quoted passage.
    wrapped = quote.find_elements(By.CSS_SELECTOR, "p.md-p")[-1]
    assert wrapped.find_elements(By.TAG_NAME, "br") == []
    assert "long enough, and it goes on here." in wrapped.text
    # The citation mark in the lead-in, not on a line of its own under the quote.
    assert "from docs/models.md [1]:" in probe.text
    assert "[1]" not in quote.text
    # An unpaired marker stays text rather than bolding the rest of the line.
    lone = driver.execute_script(
        "return window.docchat.renderMarkdown('a ** b **c** d').querySelectorAll('strong')"
        ".length + '|' + window.docchat.renderMarkdown('a ** b **c** d').textContent;"
    )
    assert lone == "1|a ** b c d"
    os.makedirs(ARTIFACTS, exist_ok=True)
    driver.execute_script("arguments[0].scrollIntoView();", probe)
    driver.save_screenshot(os.path.join(ARTIFACTS, "passage.png"))
    assert _browser_problems(driver) == []


def test_the_note_under_a_flagged_answer_says_why_it_was_flagged(driver, live_server):
    """A passage shown because the model doubted its own wording does not say the
    documentation failed to support it; an unsupported answer's note still does."""
    base = live_server.rstrip("/")
    _open_fresh_chat(driver, base)
    note = "const n = window.docchat.groundingWarning(arguments[0]); return n && n.textContent;"

    def said(checks: dict) -> str | None:
        return driver.execute_script(note, checks)

    unsure = {"grounded": False, "replaced_by": "passage", "flagged_by": ["confidence"]}
    assert said(unsure) == "The model's own answer is not shown: it was not sure of it."
    assert "not supported" not in said(unsure)
    both = {**unsure, "flagged_by": ["confidence", "terms"]}
    assert "not supported by the documentation" in said(both)
    shown = {"grounded": False, "flagged_by": ["self_check", "confidence"], "confidence": 0.61}
    assert said(shown) == "Check this answer: the model was not sure of it (confidence 0.61)."
    # Stored before flagged_by existed: the support wording, as before.
    old = {"grounded": False, "grounding_score": 0.41}
    assert said(old) == (
        "Check this answer: the documentation found does not clearly support it (grounding 0.41)."
    )
    assert said({"grounded": True}) is None
    assert said({**unsure, "replaced_by": "notice"}) is None
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


def test_no_link_to_the_owners_page_with_authentication_off(driver, live_server):
    """With authentication off everyone "owns" every collection: the owners' page is
    pointless there, so the chat page does not link to it."""
    _open_fresh_chat(driver, live_server.rstrip("/"))
    # The picker's options come in with the same answer that decides the link.
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#collection option"), "no collections"
    )
    assert not driver.find_element(By.ID, "owner-link").is_displayed()


@pytest.mark.slow  # waits for the real model's answer
def test_api_key_is_asked_for_kept_in_session_storage_and_forgotten(driver, live_server_auth):
    base, api_key = live_server_auth
    base = base.rstrip("/")
    _open_fresh_chat(driver, base)  # the page shell itself needs no key
    assert not _key_form_shown(driver)
    assert not driver.find_element(By.ID, "forget-key").is_displayed()

    box = driver.find_element(By.ID, "question")
    box.send_keys(QUESTION)
    box.send_keys(Keys.ENTER)

    # 401: the key form appears, no answer yet, the question waits in the composer.
    _wait_key_form(driver)
    assert driver.find_element(By.ID, "api-key").get_attribute("type") == "password"
    assert "kept for this browser tab only" in driver.find_element(By.ID, "key-form").text
    assert driver.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant") == []
    assert _norm(box.get_attribute("value")) == _norm(QUESTION)
    assert driver.find_element(By.ID, "chat-form").get_attribute("data-state") == "auth"
    assert not driver.find_element(By.ID, "send").is_enabled()

    # A wrong key is refused, dropped, and asked for again.
    wrong = "dck_" + secrets.token_urlsafe(30)
    key_field = driver.find_element(By.ID, "api-key")
    key_field.send_keys(wrong)
    key_field.send_keys(Keys.ENTER)
    _wait_key_form(driver, "That key was not accepted.")
    assert _session_key(driver) is None
    assert driver.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant") == []
    assert _norm(box.get_attribute("value")) == _norm(QUESTION)

    # The right key: the pending question is sent and answered with citations.
    key_field = driver.find_element(By.ID, "api-key")
    key_field.send_keys(api_key)
    key_field.send_keys(Keys.ENTER)
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: not _key_form_shown(d), message="key form did not go away"
    )
    assistant = _wait_answer(driver)
    users = driver.find_elements(By.CSS_SELECTOR, "#messages .msg.user .msg-body")
    assert [_norm(u.text) for u in users] == [_norm(QUESTION)]
    assert box.get_attribute("value") == ""
    answer_text = assistant.find_element(By.CSS_SELECTOR, ".msg-body").text
    assert answer_text.strip(), "answer is empty"
    links = _citation_links(assistant)
    assert _guide_links(assistant), f"no citation of guide.md linking to /sources/: {links}"

    assert _session_key(driver) == api_key
    assert _key_leaks(driver, api_key) == []
    assert _key_leaks(driver, wrong) == []
    assert driver.find_element(By.ID, "forget-key").is_displayed()
    conversation_id = _stored_id(driver)
    assert conversation_id
    assert _browser_problems(driver) == []

    # Thumbs up, then down with a comment, sent with the stored key: the server keeps the
    # last choice as this key's feedback.
    _rate(driver, assistant, "up")
    _rate(driver, assistant, "down", "Name the config file.")
    stored = _stored_feedback(base, conversation_id, api_key)
    assert (stored["rating"], stored["comment"]) == ("down", "Name the config file.")
    assert stored["given_by"] == "test-chat"
    assert _browser_problems(driver) == []

    # Reload (same tab): the conversation comes back without asking again.
    driver.refresh()
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant.done"),
        message="conversation was not restored after reload",
    )
    _wait_idle(driver)
    assert not _key_form_shown(driver)
    restored = driver.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant.done")
    assert len(restored) == 1
    assert _norm(restored[0].find_element(By.CSS_SELECTOR, ".msg-body").text) == _norm(answer_text)
    assert _stored_id(driver) == conversation_id
    assert _session_key(driver) == api_key
    shown = restored[0].find_element(By.CSS_SELECTOR, ".feedback")
    assert shown.get_attribute("data-rating") == "down"
    assert shown.find_element(By.CSS_SELECTOR, ".feedback-down").get_attribute("aria-pressed") == (
        "true"
    )

    # The citation opens the source page, which reads the key from sessionStorage.
    href = _guide_links(restored[0])[0][0]
    link = next(
        a
        for a in restored[0].find_elements(By.CSS_SELECTOR, ".citations li a")
        if a.get_attribute("href") == href
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", link)
    link.click()
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: urlsplit(d.current_url).path.startswith("/sources/"),
        message="citation did not open the source page",
    )
    assert _wait_source(driver, ("ready", "error", "auth")) == "ready", driver.find_element(
        By.ID, "main"
    ).text
    assert not _key_form_shown(driver)
    assert "7421" in driver.find_element(By.ID, "chunks").text
    fragment = urlsplit(href).fragment
    if fragment:
        highlighted = driver.find_elements(By.CSS_SELECTOR, ".chunk.highlight")
        assert [h.get_attribute("id") for h in highlighted] == [fragment]
    assert _key_leaks(driver, api_key) == []
    assert _browser_problems(driver) == []

    # "Forget key" removes it; the source page then asks with its own form.
    forget = driver.find_element(By.ID, "forget-key")
    assert forget.is_displayed()
    forget.click()
    assert _session_key(driver) is None
    assert not forget.is_displayed()
    driver.refresh()
    assert _wait_source(driver, ("ready", "error", "auth")) == "auth"
    _wait_key_form(driver)
    key_field = driver.find_element(By.ID, "api-key")
    key_field.send_keys(api_key)
    key_field.send_keys(Keys.ENTER)
    assert _wait_source(driver) == "ready", driver.find_element(By.ID, "main").text
    assert "7421" in driver.find_element(By.ID, "chunks").text
    assert _session_key(driver) == api_key
    driver.find_element(By.ID, "forget-key").click()
    assert _session_key(driver) is None
    assert _browser_problems(driver) == []


# Replaces window.fetch in the page for /api/ URLs (the server cannot be made to
# refuse a key on demand): records the request headers, answers with a canned status.
FAKE_API = """
window.__requests = [];
const realFetch = window.fetch.bind(window);
window.fetch = function (url, init) {
  if (!String(url).startsWith('/api/')) return realFetch(url, init);
  window.__requests.push({url: String(url), headers: (init && init.headers) || {}});
  const [status, headers, type] = window.__reply;
  return Promise.resolve(new Response(
    JSON.stringify({error: {type: type, message: 'refused by the fake'}}),
    {status: status, headers: Object.assign({'Content-Type': 'application/json'}, headers)}));
};
"""


def test_key_refusals_and_rate_limits_are_shown_inline(driver, live_server):
    base = live_server.rstrip("/")
    _open_fresh_chat(driver, base)
    key = "dck_" + secrets.token_urlsafe(30)
    driver.execute_script(
        "window.sessionStorage.setItem(arguments[0], arguments[1]);", KEY_STORAGE, key
    )
    driver.refresh()
    _wait_idle(driver)
    assert driver.find_element(By.ID, "forget-key").is_displayed()
    driver.execute_script(FAKE_API)

    def ask(reply):
        driver.execute_script("window.__reply = arguments[0];", reply)
        driver.find_element(By.ID, "new-conversation").click()
        box = driver.find_element(By.ID, "question")
        box.send_keys("Is this allowed?")
        box.send_keys(Keys.ENTER)
        WebDriverWait(driver, PAGE_TIMEOUT_S).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant.error"),
            message="no inline error",
        )
        _wait_idle(driver)
        return driver.find_element(By.CSS_SELECTOR, "#messages .msg-error").text

    assert ask([403, {}, "forbidden"]) == "This key may not use the chat."
    assert ask([429, {"Retry-After": "17"}, "rate_limited"]) == (
        "Too many requests — try again in 17 s"
    )
    # the refused question stays in the composer, ready to be sent again
    assert driver.find_element(By.ID, "question").get_attribute("value") == "Is this allowed?"
    assert not _key_form_shown(driver)
    assert _session_key(driver) == key  # a 403/429 does not drop the key
    sent = driver.execute_script("return window.__requests;")
    assert [r["headers"].get("Authorization") for r in sent] == [f"Bearer {key}"] * 2

    driver.find_element(By.ID, "forget-key").click()
    assert _session_key(driver) is None
    assert not driver.find_element(By.ID, "forget-key").is_displayed()
    assert _browser_problems(driver) == []


def test_each_answer_sentence_shows_its_passage_sentence(driver, live_server):
    """checks.support on the page: a supported sentence's block shows the passage
    sentence on hover (title), an unsupported one is marked, and a tap opens the
    evidence list at that sentence."""
    base = live_server.rstrip("/")
    _open_fresh_chat(driver, base)
    driver.execute_script(
        """
        const msg = document.createElement('article');
        msg.id = 'support-probe';
        msg.className = 'msg assistant done';
        const body = document.createElement('div');
        body.className = 'msg-body answer';
        body.appendChild(window.docchat.renderMarkdown(arguments[0]));
        msg.appendChild(body);
        document.getElementById('messages').appendChild(msg);
        const box = window.docchat.renderSupport(msg, body, arguments[1]);
        if (box) msg.appendChild(box);
        """,
        "Run `make serve` to start the server without ingesting.\n\n"
        "- Docchat also ships a phone app.\n- <img src=x onerror=alert(1)> stays text.",
        [
            {
                "sentence": "Run `make serve` to start the server without ingesting.",
                "source": "docs/getting-started.md",
                "passage_sentence": "make serve starts the server without ingesting.",
                "score": 0.81,
                "supported": True,
            },
            {
                "sentence": "Docchat also ships a phone app.",
                "source": "",
                "passage_sentence": "",
                "score": 0.2,
                "supported": False,
            },
            {"sentence": 42, "supported": True},  # malformed: ignored
        ],
    )
    probe = driver.find_element(By.ID, "support-probe")
    first = probe.find_element(By.CSS_SELECTOR, ".msg-body p.supported")
    assert "make serve starts the server without ingesting." in first.get_attribute("title")
    assert "docs/getting-started.md" in first.get_attribute("title")
    marked = probe.find_element(By.CSS_SELECTOR, ".msg-body li.unsupported")
    assert marked.text == "Docchat also ships a phone app."
    assert marked.get_attribute("title").startswith("Not found in the documentation")
    evidence = probe.find_element(By.CSS_SELECTOR, "details.evidence")
    assert evidence.get_attribute("open") is None
    marked.click()
    assert evidence.get_attribute("open") is not None
    current = evidence.find_element(By.CSS_SELECTOR, "li.evidence-current")
    assert "Not found in the documentation." in current.text
    assert len(evidence.find_elements(By.CSS_SELECTOR, ".evidence-list li")) == 2
    assert probe.find_elements(By.CSS_SELECTOR, "img") == []  # text, never markup
    os.makedirs(ARTIFACTS, exist_ok=True)
    driver.execute_script("arguments[0].scrollIntoView();", probe)
    driver.save_screenshot(os.path.join(ARTIFACTS, "support.png"))
    assert _browser_problems(driver) == []


def test_an_answer_cut_at_its_length_limit_is_marked(driver, live_server, components):
    """An answer stopped by llm.max_tokens ends with a note that it is unfinished (shown
    as written here: rag.ungrounded_action=flag); a complete one (a refusal) has none."""
    chat = components.chat
    base = live_server.rstrip("/")
    llm, rag = chat.llm, chat.rag
    try:
        chat.llm = llm.model_copy(update={"max_tokens": 4})
        chat.rag = rag.model_copy(update={"ungrounded_action": "flag"})
        _open_fresh_chat(driver, base)
        box = driver.find_element(By.ID, "question")
        box.send_keys(QUESTION)
        box.send_keys(Keys.ENTER)
        cut = _wait_answer(driver)
        note = cut.find_element(By.CSS_SELECTOR, ".cut-note")
        assert note.text == "The answer reached its length limit and stops here, unfinished."
        assert note.get_attribute("role") == "note"
        os.makedirs(ARTIFACTS, exist_ok=True)
        driver.save_screenshot(os.path.join(ARTIFACTS, "cut-answer.png"))
    finally:
        chat.llm, chat.rag = llm, rag
    # The stored answer keeps why it ended: reloaded, it is marked as it was live.
    driver.refresh()
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant.done .cut-note"),
        message="the reloaded answer lost its note",
    )
    _wait_idle(driver)
    # A refusal is complete: no note (nor on anything that ended with "stop").
    box = driver.find_element(By.ID, "question")
    box.send_keys("What is the capital of France?")
    box.send_keys(Keys.ENTER)
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant.done")) == 2,
        message="no second answer",
    )
    refused = _wait_answer(driver)
    assert "notice" in refused.get_attribute("class").split()
    assert refused.find_elements(By.CSS_SELECTOR, ".cut-note") == []
    assert _browser_problems(driver) == []
