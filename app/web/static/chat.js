/* docchat chat page: the conversation controller, loaded as the page's module
 * entry. It owns the composer, the message log, the current conversation and
 * what to retry once an API key is entered; rendering, the event stream, the
 * feedback widget and key handling live in the modules imported below.
 *
 * Safety rule for the page: model output, document titles/sections and user
 * text are untrusted. They only ever reach the DOM through textContent /
 * createTextNode (never innerHTML & co.), and links are only built from
 * citation URLs that pass citations.js's safeHref().
 *
 * API keys (when the server has authentication on) live only in
 * sessionStorage["docchat.api_key"]: never localStorage, a cookie or a URL
 * (auth.js).
 */

import { errorMessage, networkErrorMessage, rateLimitMessage, readError, refusalMessage, withKey } from "./api.js";
import { createKeyPrompt, getKey, loadSession } from "./auth.js";
import { renderCitations } from "./citations.js";
import { renderFeedback } from "./feedback.js";
import { createLibrary } from "./library.js";
import { renderMarkdown } from "./markdown.js";
import {
  assistantMessage,
  finishAssistant,
  groundingWarning,
  setError,
  showTyping,
  userMessage,
} from "./messages.js";
import { createSSEParser, readEventStream } from "./sse.js";
import { renderSupport } from "./support.js";

const STORAGE_KEY = "docchat.conversation_id";
const FORBIDDEN_MESSAGE = "This key may not use the chat."; // on a 403

function getStoredId() {
  try {
    return window.localStorage.getItem(STORAGE_KEY);
  } catch (e) {
    return null;
  }
}

function setStoredId(id) {
  // The delete button shows only while there is a stored conversation to delete.
  const deleteBtn = document.getElementById("delete-conversation");
  if (deleteBtn) deleteBtn.hidden = !id;
  try {
    if (id) window.localStorage.setItem(STORAGE_KEY, id);
    else window.localStorage.removeItem(STORAGE_KEY);
  } catch (e) {
    /* storage unavailable: the conversation just won't survive a reload */
  }
}

function initChat() {
  const form = document.getElementById("chat-form");
  const input = document.getElementById("question");
  const sendBtn = document.getElementById("send");
  const newBtn = document.getElementById("new-conversation");
  const deleteBtn = document.getElementById("delete-conversation");
  const list = document.getElementById("messages");
  const scroller = document.getElementById("main");
  const emptyState = document.getElementById("empty-state");
  if (!form || !input || !list) return;

  let conversationId = getStoredId();
  if (deleteBtn) deleteBtn.hidden = !conversationId;
  let controller = null; // AbortController of the running request
  let generation = 0; // bumps on "New conversation" to ignore stale work
  let pending = null; // what to retry once an API key has been entered

  // The collections one may read and one's past conversations.
  const library = createLibrary({
    onOpen: function (id) {
      newBtn.click();
      conversationId = id;
      setStoredId(id);
      loadConversation();
    },
    onNew: function () {
      newBtn.click();
    },
  });

  const keyPrompt = createKeyPrompt(
    function () {
      const retry = pending;
      pending = null;
      setState("idle");
      input.focus({ preventScroll: true });
      if (retry) retry();
    },
    function () {
      input.focus({ preventScroll: true });
    }
  );

  // The server wants a (different) key: show the key form and remember
  // what to do once one is entered. State "auth" keeps Send disabled.
  function requireKey(usedKey, retry) {
    pending = retry;
    setState("auth");
    keyPrompt.rejected(usedKey);
  }

  // Send whatever the composer holds (the question that needed a key, or
  // the user's edit of it).
  function sendComposer() {
    const question = input.value.trim();
    if (!question) return;
    input.value = "";
    autoGrow();
    ask(question);
  }

  // Put an unanswered question back into the composer unless the user has
  // started typing something else; true if it is there now.
  function restoreQuestion(question) {
    if (input.value.trim() !== "" && input.value.trim() !== question) return false;
    input.value = question;
    autoGrow();
    return true;
  }

  function setState(state) {
    form.dataset.state = state;
    const busy = state !== "idle";
    sendBtn.disabled = busy;
    sendBtn.setAttribute("aria-disabled", busy ? "true" : "false");
  }

  function updateEmptyState() {
    if (emptyState) emptyState.hidden = list.children.length > 0;
  }

  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  function autoGrow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 200) + "px";
  }

  function addUserMessage(text, id) {
    const msg = userMessage(text, id);
    list.appendChild(msg);
    updateEmptyState();
    return msg;
  }

  function addAssistantMessage(id) {
    const parts = assistantMessage(id);
    list.appendChild(parts.msg);
    updateEmptyState();
    return parts;
  }

  function renderHistory(messages) {
    list.replaceChildren();
    (messages || []).forEach(function (m) {
      if (!m || typeof m !== "object") return;
      if (m.role === "user") {
        addUserMessage(m.content || "", m.id);
      } else if (m.role === "assistant") {
        const parts = addAssistantMessage(m.id);
        if (m.status) parts.msg.dataset.status = String(m.status);
        finishAssistant(
          parts,
          m.content || "",
          m.citations,
          typeof m.answered_from_docs === "boolean" ? m.answered_from_docs : undefined,
          m.checks,
          m.finish_reason
        );
        if (m.status && /^(error|failed)$/i.test(String(m.status))) {
          parts.msg.classList.add("error");
          if (!m.content) setError(parts.msg, "This answer could not be completed.");
        } else if (!m.status || /^(complete|blocked)$/i.test(String(m.status))) {
          renderFeedback(parts.msg, m.feedback, requireKey);
        }
      }
    });
    updateEmptyState();
    scrollToBottom();
  }

  async function loadConversation() {
    if (!conversationId) {
      setState("idle");
      return;
    }
    const gen = generation;
    const key = getKey();
    let needKey = false;
    setState("loading");
    list.setAttribute("aria-busy", "true");
    try {
      const res = await fetch("/api/conversations/" + encodeURIComponent(conversationId), {
        headers: withKey({ Accept: "application/json" }, key),
      });
      if (gen !== generation) return;
      if (res.status === 401) {
        needKey = true;
      } else if (res.status === 403 || res.status === 429) {
        const parts = addAssistantMessage();
        parts.msg.classList.add("error");
        setError(parts.msg, "Could not load the conversation: " + refusalMessage(res, FORBIDDEN_MESSAGE));
      } else if (res.status === 404) {
        conversationId = null;
        setStoredId(null);
      } else if (!res.ok) {
        const msg = await readError(res);
        const parts = addAssistantMessage();
        parts.msg.classList.add("error");
        setError(parts.msg, "Could not load the conversation: " + msg);
      } else {
        const data = await res.json();
        if (gen !== generation) return;
        library.opened(conversationId, data && data.collection);
        renderHistory(data && data.messages);
      }
    } catch (e) {
      if (gen !== generation) return;
      const parts = addAssistantMessage();
      parts.msg.classList.add("error");
      setError(parts.msg, "Could not load the conversation: " + (e && e.message ? e.message : "network error"));
    } finally {
      if (gen === generation) {
        list.removeAttribute("aria-busy");
        setState("idle");
        if (needKey) requireKey(key, loadConversation);
      }
    }
  }

  async function ask(question) {
    const gen = generation;
    const key = getKey();
    let needKey = false;
    setState("streaming");
    const userMsg = addUserMessage(question);
    const parts = addAssistantMessage();
    parts.msg.classList.add("streaming");
    parts.msg.setAttribute("aria-busy", "true");
    showTyping(parts.msg, true);
    scrollToBottom();

    let text = "";
    let finished = false;
    let renderQueued = false;

    const renderPartial = function () {
      renderQueued = false;
      if (finished) return;
      const stick = nearBottom();
      parts.body.replaceChildren(renderMarkdown(text));
      if (stick) scrollToBottom();
    };

    const fail = function (message) {
      finished = true;
      if (text) parts.body.replaceChildren(renderMarkdown(text));
      parts.msg.classList.add("error");
      parts.msg.removeAttribute("aria-busy");
      setError(parts.msg, message);
    };

    // "start" and "done" both carry the ids: the conversation's (kept so a
    // reload finds it) and the answer's (what feedback is given on).
    const noteIds = function (data) {
      if (data.conversation_id) {
        const started = conversationId !== String(data.conversation_id);
        conversationId = String(data.conversation_id);
        setStoredId(conversationId);
        if (started) library.opened(conversationId, null);
      }
      if (data.message_id) parts.msg.dataset.messageId = String(data.message_id);
    };

    const onEvent = function (name, data) {
      if (finished || gen !== generation) return;
      if (name === "start") {
        noteIds(data);
      } else if (name === "token") {
        if (typeof data.text === "string" && data.text) {
          text += data.text;
          if (!renderQueued) {
            renderQueued = true;
            window.requestAnimationFrame(renderPartial);
          }
        }
      } else if (name === "done") {
        finished = true;
        noteIds(data);
        finishAssistant(
          parts,
          typeof data.answer === "string" ? data.answer : text,
          data.citations,
          data.answered_from_docs,
          data.checks,
          data.finish_reason
        );
        renderFeedback(parts.msg, null, requireKey);
      } else if (name === "error") {
        fail(errorMessage(data, "The answer could not be generated."));
      }
    };

    controller = new AbortController();
    try {
      const res = await fetch("/api/chat", {
        method: "POST",
        headers: withKey({ "Content-Type": "application/json", Accept: "text/event-stream" }, key),
        // A new conversation asks in the picked collection; one that goes on
        // keeps its own.
        body: JSON.stringify({
          question: question,
          conversation_id: conversationId || null,
          collection: conversationId ? null : library.collection(),
          stream: true,
        }),
        signal: controller.signal,
      });
      if (res.status === 401) {
        // Not asked yet: take the question back out of the log; it waits
        // in the composer and is sent again once a key has been entered.
        finished = true;
        needKey = gen === generation;
        if (needKey) {
          userMsg.remove();
          parts.msg.remove();
          updateEmptyState();
        }
      } else if (res.status === 403) {
        fail(FORBIDDEN_MESSAGE);
      } else if (res.status === 429) {
        fail(rateLimitMessage(res));
        if (gen === generation) restoreQuestion(question); // ready to send again later
      } else if (!res.ok) {
        fail(await readError(res));
      } else if (!res.body) {
        fail("This browser cannot read streamed answers.");
      } else {
        await readEventStream(res.body, onEvent);
        if (!finished && gen === generation) fail("The answer stream ended unexpectedly.");
      }
    } catch (e) {
      if (gen === generation && !finished) {
        fail(e && e.name === "AbortError" ? "Stopped." : networkErrorMessage(e));
      }
    } finally {
      if (gen === generation) {
        controller = null;
        parts.msg.classList.remove("streaming");
        showTyping(parts.msg, false);
        setState("idle");
        if (needKey) {
          const inComposer = restoreQuestion(question);
          requireKey(
            key,
            inComposer
              ? sendComposer
              : function () {
                  ask(question);
                }
          );
        }
      }
    }
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (form.dataset.state !== "idle") return;
    const question = input.value.trim();
    if (!question) {
      input.focus();
      return;
    }
    input.value = "";
    autoGrow();
    ask(question);
  });

  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
      ev.preventDefault();
      if (keyPrompt.visible()) {
        keyPrompt.focus(); // a key is needed first
        return;
      }
      if (typeof form.requestSubmit === "function") form.requestSubmit();
      else form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });

  input.addEventListener("input", autoGrow);

  if (deleteBtn) {
    deleteBtn.addEventListener("click", async function () {
      if (!conversationId) return;
      if (!window.confirm("Delete this conversation from the server? This cannot be undone.")) return;
      const id = conversationId;
      try {
        const res = await fetch("/api/conversations/" + encodeURIComponent(id), {
          method: "DELETE",
          headers: withKey({ Accept: "application/json" }, getKey()),
        });
        if (!res.ok && res.status !== 404) {
          const parts = addAssistantMessage();
          parts.msg.classList.add("error");
          setError(parts.msg, "Could not delete the conversation: " + (await readError(res)));
          return;
        }
      } catch (e) {
        const parts = addAssistantMessage();
        parts.msg.classList.add("error");
        setError(parts.msg, networkErrorMessage(e));
        return;
      }
      newBtn.click(); // deleted (or already gone): start afresh
    });
  }

  newBtn.addEventListener("click", function () {
    generation++;
    if (controller) controller.abort();
    controller = null;
    pending = null;
    keyPrompt.hide();
    conversationId = null;
    setStoredId(null);
    list.replaceChildren();
    list.removeAttribute("aria-busy");
    updateEmptyState();
    setState("idle");
    input.value = "";
    autoGrow();
    input.focus();
  });

  updateEmptyState();
  // Sign-in or keys: the server says which before the first request. Not
  // signed in where sign-in is on: the sign-in prompt at once, not at the
  // first question.
  loadSession().then(function (session) {
    if (session.oidc && !session.signed_in) {
      requireKey(null, function () {
        library.load();
        loadConversation();
      });
    } else {
      library.load();
      loadConversation();
    }
  });
}

// For tests and the browser console: the renderers and the stream parser.
window.docchat = Object.freeze({
  renderMarkdown: renderMarkdown,
  renderCitations: renderCitations,
  renderSupport: renderSupport,
  groundingWarning: groundingWarning,
  createSSEParser: createSSEParser,
});

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initChat);
else initChat();
