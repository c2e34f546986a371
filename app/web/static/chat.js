/* docchat chat page.
 *
 * Safety rule for this file: model output, document titles/sections and user
 * text are untrusted. They only ever reach the DOM through textContent /
 * createTextNode (never innerHTML & co.), and links are only built from
 * citation URLs that pass safeHref().
 *
 * API keys (when the server has authentication on) live only in
 * sessionStorage["docchat.api_key"]: never localStorage, a cookie or a URL.
 * The key handling itself is in auth.js (window.docchat.auth).
 */
(function () {
  "use strict";

  const STORAGE_KEY = "docchat.conversation_id";
  const FORBIDDEN_MESSAGE = "This key may not use the chat."; // on a 403
  const FEEDBACK_FORBIDDEN = "This key may not give feedback.";
  const COMMENT_MAX = 1000; // the server's limit (app/store/feedback.py)

  // API key helpers and the key form: auth.js (loaded first).
  const { getKey, withKey, rateLimitMessage, refusalMessage, createKeyPrompt } = window.docchat.auth;

  /* ------------------------------------------------------------------ *
   * Small DOM helper                                                    *
   * ------------------------------------------------------------------ */

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /* ------------------------------------------------------------------ *
   * Markdown subset -> DOM (no HTML parsing, ever)                      *
   *   ```fenced code```, `inline code`, **bold**, "- " / "* " bullets,   *
   *   "1. " numbered lists, "# " headings, paragraphs, bare lines.      *
   *   Links and images are left as plain text.                          *
   * ------------------------------------------------------------------ */

  // Append inline content (`code` and **bold**) of one line to parent.
  function appendInline(parent, text) {
    let i = 0;
    let plain = "";
    const flush = function () {
      if (plain) {
        appendBold(parent, plain);
        plain = "";
      }
    };
    while (i < text.length) {
      if (text[i] === "`") {
        // Count the opening backtick run and look for a matching closing run.
        let run = 1;
        while (text[i + run] === "`") run++;
        const fence = "`".repeat(run);
        const end = text.indexOf(fence, i + run);
        if (end !== -1 && end > i + run) {
          flush();
          parent.appendChild(el("code", "md-code", text.slice(i + run, end)));
          i = end + run;
          continue;
        }
        plain += fence;
        i += run;
        continue;
      }
      plain += text[i];
      i++;
    }
    flush();
  }

  function appendBold(parent, text) {
    const re = /\*\*(?=\S)([\s\S]*?\S)\*\*/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      parent.appendChild(el("strong", null, m[1]));
      last = m.index + m[0].length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  const FENCE_RE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
  const BULLET_RE = /^\s{0,3}[-*+]\s+(.*)$/;
  const NUMBERED_RE = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
  const HEADING_RE = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;

  function renderMarkdown(text) {
    const frag = document.createDocumentFragment();
    const lines = String(text === undefined || text === null ? "" : text)
      .replace(/\r\n?/g, "\n")
      .split("\n");

    let para = null; // current <p>
    let list = null; // current <ul>/<ol>
    let lastItem = null; // last <li> (for continuation lines)

    const closeBlocks = function () {
      para = null;
      list = null;
      lastItem = null;
    };

    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];

      // Fenced code block (an unterminated fence runs to the end: streaming).
      const fence = FENCE_RE.exec(line);
      if (fence) {
        closeBlocks();
        const marker = fence[1];
        const body = [];
        let j = i + 1;
        while (j < lines.length) {
          const close = lines[j].trim();
          if (close.length >= marker.length && close === marker[0].repeat(close.length)) break;
          body.push(lines[j]);
          j++;
        }
        const pre = el("pre", "md-pre");
        const code = el("code", null, body.join("\n"));
        if (fence[2]) code.dataset.lang = fence[2];
        pre.appendChild(code);
        frag.appendChild(pre);
        i = j; // skip the closing fence (or run past the end)
        continue;
      }

      if (line.trim() === "") {
        closeBlocks();
        continue;
      }

      const heading = HEADING_RE.exec(line);
      if (heading) {
        closeBlocks();
        const h = el("p", "md-heading md-h" + heading[1].length);
        const strong = el("strong");
        appendInline(strong, heading[2]);
        h.appendChild(strong);
        frag.appendChild(h);
        continue;
      }

      const bullet = BULLET_RE.exec(line);
      const numbered = bullet ? null : NUMBERED_RE.exec(line);
      if (bullet || numbered) {
        const tag = bullet ? "UL" : "OL";
        if (!list || list.tagName !== tag) {
          para = null;
          list = el(tag.toLowerCase(), "md-list");
          if (numbered && numbered[1] !== "1") list.start = parseInt(numbered[1], 10);
          frag.appendChild(list);
        }
        lastItem = el("li");
        appendInline(lastItem, bullet ? bullet[1] : numbered[2]);
        list.appendChild(lastItem);
        continue;
      }

      // Indented continuation of a list item.
      if (lastItem && /^\s+\S/.test(line)) {
        lastItem.appendChild(el("br"));
        appendInline(lastItem, line.trim());
        continue;
      }

      // Bare line: part of the current paragraph, separated by a line break.
      list = null;
      lastItem = null;
      if (!para) {
        para = el("p", "md-p");
        frag.appendChild(para);
      } else {
        para.appendChild(el("br"));
      }
      appendInline(para, line);
    }

    const root = el("div", "md");
    root.appendChild(frag);
    return root;
  }

  /* ------------------------------------------------------------------ *
   * Citations                                                          *
   * ------------------------------------------------------------------ */

  // Only same-origin http(s) URLs become links; anything else (javascript:,
  // data:, ...) is refused.
  function safeHref(url) {
    if (typeof url !== "string" || url === "") return null;
    try {
      const u = new URL(url, window.location.href);
      if (u.protocol !== "http:" && u.protocol !== "https:") return null;
      if (u.origin !== window.location.origin) return null;
      return u.pathname + u.search + u.hash;
    } catch (e) {
      return null;
    }
  }

  function citationHref(c) {
    const direct = safeHref(c.url);
    if (direct) return direct;
    if (c.document_id !== undefined && c.document_id !== null && c.document_id !== "") {
      let href = "/sources/" + encodeURIComponent(String(c.document_id));
      if (c.chunk !== undefined && c.chunk !== null) href += "#chunk-" + encodeURIComponent(String(c.chunk));
      return href;
    }
    return null;
  }

  function citationLabel(c) {
    const title = c.title ? String(c.title) : c.source ? String(c.source) : "Untitled";
    let label = title;
    if (c.section) label += " — " + String(c.section);
    if (c.source) label += " (" + String(c.source) + ")";
    return label;
  }

  function renderCitations(citations) {
    if (!Array.isArray(citations) || citations.length === 0) return null;
    const wrap = el("div", "citations");
    const heading = el("p", "citations-heading", "Sources");
    heading.id = "cites-" + Math.random().toString(36).slice(2, 10);
    wrap.appendChild(heading);
    const ol = el("ol", "citation-list");
    ol.setAttribute("aria-labelledby", heading.id);
    citations.forEach(function (c, idx) {
      if (!c || typeof c !== "object") return;
      const li = el("li", "citation");
      const n = Number.isInteger(c.n) ? c.n : idx + 1;
      li.value = n;
      li.dataset.n = String(n);
      const href = citationHref(c);
      const link = el(href ? "a" : "span", "citation-link", citationLabel(c));
      if (href) link.href = href;
      li.appendChild(link);
      if (typeof c.score === "number" && isFinite(c.score)) {
        const score = el("span", "citation-score", c.score.toFixed(2));
        score.title = "Retrieval score";
        li.appendChild(document.createTextNode(" "));
        li.appendChild(score);
      }
      ol.appendChild(li);
    });
    wrap.appendChild(ol);
    return wrap;
  }

  /* ------------------------------------------------------------------ *
   * SSE parser (fetch + ReadableStream; handles events split anywhere)  *
   * ------------------------------------------------------------------ */

  function createSSEParser(onEvent) {
    let buffer = "";
    let eventName = "";
    let data = [];
    let hasData = false;

    const dispatch = function () {
      if (hasData) onEvent(eventName || "message", data.join("\n"));
      eventName = "";
      data = [];
      hasData = false;
    };

    const processLine = function (line) {
      if (line === "") {
        dispatch();
        return;
      }
      if (line[0] === ":") return; // comment / keep-alive
      const colon = line.indexOf(":");
      let field = line;
      let value = "";
      if (colon !== -1) {
        field = line.slice(0, colon);
        value = line.slice(colon + 1);
        if (value[0] === " ") value = value.slice(1);
      }
      if (field === "event") eventName = value;
      else if (field === "data") {
        data.push(value);
        hasData = true;
      }
      // "id" and "retry" are irrelevant here.
    };

    return {
      push: function (chunk) {
        buffer += chunk;
        for (;;) {
          const m = /\r\n|\r|\n/.exec(buffer);
          if (!m) break;
          // A lone trailing "\r" may be the first half of "\r\n": wait.
          if (m[0] === "\r" && m.index === buffer.length - 1) break;
          processLine(buffer.slice(0, m.index));
          buffer = buffer.slice(m.index + m[0].length);
        }
      },
      end: function () {
        if (buffer !== "") {
          processLine(buffer.replace(/\r$/, ""));
          buffer = "";
        }
        dispatch(); // be lenient with a missing final blank line
      },
    };
  }

  /* ------------------------------------------------------------------ *
   * Errors                                                             *
   * ------------------------------------------------------------------ */

  function errorMessageFromBody(body, fallback) {
    if (body && typeof body === "object") {
      if (body.error && typeof body.error === "object" && body.error.message) return String(body.error.message);
      if (typeof body.error === "string") return body.error;
      if (typeof body.detail === "string") return body.detail;
      if (Array.isArray(body.detail)) {
        const parts = body.detail
          .map(function (d) {
            return d && d.msg ? String(d.msg) : "";
          })
          .filter(Boolean);
        if (parts.length) return parts.join("; ");
      }
      if (body.detail && typeof body.detail === "object" && body.detail.message) return String(body.detail.message);
    }
    return fallback;
  }

  async function readError(response) {
    const fallback = "Request failed (" + response.status + (response.statusText ? " " + response.statusText : "") + ").";
    let text = "";
    try {
      text = await response.text();
    } catch (e) {
      return fallback;
    }
    try {
      return errorMessageFromBody(JSON.parse(text), fallback);
    } catch (e) {
      return fallback;
    }
  }

  /* ------------------------------------------------------------------ *
   * Chat page                                                          *
   * ------------------------------------------------------------------ */

  function getStoredId() {
    try {
      return window.localStorage.getItem(STORAGE_KEY);
    } catch (e) {
      return null;
    }
  }

  function setStoredId(id) {
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
    const list = document.getElementById("messages");
    const scroller = document.getElementById("main");
    const emptyState = document.getElementById("empty-state");
    if (!form || !input || !list) return;

    let conversationId = getStoredId();
    let controller = null; // AbortController of the running request
    let generation = 0; // bumps on "New conversation" to ignore stale work
    let pending = null; // what to retry once an API key has been entered

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
      const msg = el("article", "msg user");
      msg.setAttribute("aria-label", "You");
      if (id) msg.dataset.messageId = id;
      msg.appendChild(el("p", "msg-role", "You"));
      msg.appendChild(el("div", "msg-body user-text", text));
      list.appendChild(msg);
      updateEmptyState();
      return msg;
    }

    function addAssistantMessage(id) {
      const msg = el("article", "msg assistant");
      msg.setAttribute("aria-label", "docchat");
      if (id) msg.dataset.messageId = id;
      msg.appendChild(el("p", "msg-role", "docchat"));
      const body = el("div", "msg-body answer");
      msg.appendChild(body);
      list.appendChild(msg);
      updateEmptyState();
      return { msg: msg, body: body };
    }

    function showTyping(msg, on) {
      let dots = msg.querySelector(".typing");
      if (on && !dots) {
        dots = el("div", "typing");
        dots.setAttribute("role", "status");
        dots.appendChild(el("span", "visually-hidden", "docchat is writing an answer"));
        for (let i = 0; i < 3; i++) dots.appendChild(el("span", "dot"));
        msg.appendChild(dots);
      } else if (!on && dots) {
        dots.remove();
      }
    }

    function setError(msg, message) {
      let box = msg.querySelector(".msg-error");
      if (!box) {
        box = el("p", "msg-error");
        box.setAttribute("role", "alert");
        msg.appendChild(box);
      }
      box.textContent = message;
    }

    // A warning under an answer its sources do not support (checks.grounded false).
    function groundingWarning(checks) {
      if (!checks || typeof checks !== "object" || checks.grounded !== false) return null;
      const score = Number(checks.grounding_score);
      const note = el("p", "grounding-warning");
      note.setAttribute("role", "note");
      note.textContent =
        "Check this answer: the documentation found does not clearly support it" +
        (Number.isFinite(score) ? " (grounding " + score.toFixed(2) + ")." : ".");
      return note;
    }

    function finishAssistant(parts, answer, citations, answeredFromDocs, checks) {
      parts.body.replaceChildren(renderMarkdown(answer));
      const old = parts.msg.querySelector(".citations");
      if (old) old.remove();
      const oldWarning = parts.msg.querySelector(".grounding-warning");
      if (oldWarning) oldWarning.remove();
      const warning = groundingWarning(checks);
      if (warning) parts.msg.appendChild(warning);
      const cites = renderCitations(citations);
      if (cites) parts.msg.appendChild(cites);
      if (answeredFromDocs === false) {
        parts.msg.classList.add("notice");
        parts.body.setAttribute("role", "note");
      }
      parts.msg.classList.add("done");
      parts.msg.removeAttribute("aria-busy");
    }

    // Drawn, not an emoji: minimal systems have no emoji font. (Feather icons, MIT.)
    const THUMB_UP =
      "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3";
    const THUMB_DOWN =
      "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17";

    function thumbIcon(path) {
      const ns = "http://www.w3.org/2000/svg";
      const svg = document.createElementNS(ns, "svg");
      svg.setAttribute("viewBox", "0 0 24 24");
      svg.setAttribute("class", "feedback-icon");
      svg.setAttribute("aria-hidden", "true");
      svg.setAttribute("focusable", "false");
      const shape = document.createElementNS(ns, "path");
      shape.setAttribute("d", path);
      svg.appendChild(shape);
      return svg;
    }

    // Thumbs up / down under a finished answer, then an optional comment.
    // `given` is the feedback this key already gave it (from the conversation view).
    // DOM hooks: .feedback[data-state=idle|sending|saved|error][data-rating],
    // button.feedback-up / .feedback-down (aria-pressed), form.feedback-comment.
    function renderFeedback(msg, given) {
      const old = msg.querySelector(".feedback");
      if (old) old.remove();
      const messageId = msg.dataset.messageId;
      if (!messageId) return;
      let rating = given && (given.rating === "up" || given.rating === "down") ? given.rating : null;

      const box = el("div", "feedback");
      box.dataset.state = "idle";
      const row = el("div", "feedback-row");
      const label = el("span", "feedback-label", "Was this answer helpful?");
      label.id = "fb-" + Math.random().toString(36).slice(2, 10);
      const group = el("div", "feedback-buttons");
      group.setAttribute("role", "group");
      group.setAttribute("aria-labelledby", label.id);
      const up = el("button", "button secondary feedback-button feedback-up");
      const down = el("button", "button secondary feedback-button feedback-down");
      up.appendChild(thumbIcon(THUMB_UP));
      up.appendChild(document.createTextNode(" Yes"));
      down.appendChild(thumbIcon(THUMB_DOWN));
      down.appendChild(document.createTextNode(" No"));
      up.type = "button";
      down.type = "button";
      up.title = "Helpful";
      down.title = "Not helpful";
      group.appendChild(up);
      group.appendChild(down);
      const status = el("span", "feedback-status");
      status.setAttribute("role", "status");
      row.appendChild(label);
      row.appendChild(group);
      row.appendChild(status);
      box.appendChild(row);

      const commentForm = el("form", "feedback-comment");
      commentForm.hidden = true;
      commentForm.setAttribute("autocomplete", "off");
      const commentLabel = el("label", "visually-hidden", "Comment on this answer (optional)");
      const comment = el("input", "feedback-comment-input");
      comment.type = "text";
      comment.maxLength = COMMENT_MAX;
      comment.placeholder = "What was wrong or missing? (optional)";
      comment.id = label.id + "-comment";
      commentLabel.htmlFor = comment.id;
      comment.value = given && typeof given.comment === "string" ? given.comment : "";
      const sendComment = el("button", "button secondary feedback-send", "Send comment");
      sendComment.type = "submit";
      commentForm.appendChild(commentLabel);
      commentForm.appendChild(comment);
      commentForm.appendChild(sendComment);
      box.appendChild(commentForm);

      const show = function () {
        up.setAttribute("aria-pressed", rating === "up" ? "true" : "false");
        down.setAttribute("aria-pressed", rating === "down" ? "true" : "false");
        box.dataset.rating = rating || "";
      };

      const busy = function (on) {
        up.disabled = on;
        down.disabled = on;
        sendComment.disabled = on;
      };

      const send = async function (chosen, withComment) {
        const key = getKey();
        box.dataset.state = "sending";
        status.textContent = "Saving…";
        busy(true);
        try {
          const res = await fetch("/api/messages/" + encodeURIComponent(messageId) + "/feedback", {
            method: "POST",
            headers: withKey({ "Content-Type": "application/json", Accept: "application/json" }, key),
            body: JSON.stringify({ rating: chosen, comment: comment.value.trim() || null }),
          });
          if (res.status === 401) {
            box.dataset.state = "idle";
            status.textContent = "";
            requireKey(key, function () {
              send(chosen, withComment);
            });
            return;
          }
          if (!res.ok) {
            box.dataset.state = "error";
            status.textContent = refusalMessage(res, FEEDBACK_FORBIDDEN) || (await readError(res));
            return;
          }
          const data = await res.json();
          rating = data && data.rating ? String(data.rating) : chosen;
          comment.value = data && typeof data.comment === "string" ? data.comment : "";
          show();
          box.dataset.state = "saved";
          status.textContent = withComment ? "Thanks, your comment was sent." : "Thanks for the feedback.";
          commentForm.hidden = withComment;
          if (!withComment && !comment.value) comment.focus({ preventScroll: true });
        } catch (e) {
          box.dataset.state = "error";
          status.textContent = "Feedback not sent: " + (e && e.message ? e.message : "network error");
        } finally {
          busy(false);
        }
      };

      up.addEventListener("click", function () {
        send("up", false);
      });
      down.addEventListener("click", function () {
        send("down", false);
      });
      commentForm.addEventListener("submit", function (ev) {
        ev.preventDefault();
        if (rating) send(rating, true);
      });

      show();
      msg.appendChild(box);
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
            m.checks
          );
          if (m.status && /^(error|failed)$/i.test(String(m.status))) {
            parts.msg.classList.add("error");
            if (!m.content) setError(parts.msg, "This answer could not be completed.");
          } else if (!m.status || /^(complete|blocked)$/i.test(String(m.status))) {
            renderFeedback(parts.msg, m.feedback);
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

      const onEvent = function (name, raw) {
        if (finished || gen !== generation) return;
        let data = null;
        try {
          data = raw ? JSON.parse(raw) : {};
        } catch (e) {
          return; // ignore malformed event payloads
        }
        if (name === "start") {
          if (data.conversation_id) {
            conversationId = String(data.conversation_id);
            setStoredId(conversationId);
          }
          if (data.message_id) parts.msg.dataset.messageId = String(data.message_id);
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
          if (data.conversation_id) {
            conversationId = String(data.conversation_id);
            setStoredId(conversationId);
          }
          if (data.message_id) parts.msg.dataset.messageId = String(data.message_id);
          finishAssistant(
            parts,
            typeof data.answer === "string" ? data.answer : text,
            data.citations,
            data.answered_from_docs,
            data.checks
          );
          renderFeedback(parts.msg, null);
        } else if (name === "error") {
          fail(errorMessageFromBody(data, "The answer could not be generated."));
        }
      };

      controller = new AbortController();
      try {
        const res = await fetch("/api/chat", {
          method: "POST",
          headers: withKey({ "Content-Type": "application/json", Accept: "text/event-stream" }, key),
          body: JSON.stringify({ question: question, conversation_id: conversationId || null, stream: true }),
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
          const reader = res.body.getReader();
          const decoder = new TextDecoder("utf-8");
          const parser = createSSEParser(onEvent);
          for (;;) {
            const chunk = await reader.read();
            if (chunk.done) break;
            parser.push(decoder.decode(chunk.value, { stream: true }));
          }
          parser.push(decoder.decode());
          parser.end();
          if (!finished && gen === generation) fail("The answer stream ended unexpectedly.");
        }
      } catch (e) {
        if (gen === generation && !finished) {
          fail(e && e.name === "AbortError" ? "Stopped." : "Network error: " + (e && e.message ? e.message : "request failed"));
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
    loadConversation();
  }

  window.docchat = Object.freeze(
    Object.assign({}, window.docchat, {
      renderMarkdown: renderMarkdown,
      renderCitations: renderCitations,
      createSSEParser: createSSEParser,
    })
  );

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initChat);
  else initChat();
})();
