/* docchat server-sent events, as POST /api/chat streams them.
 *
 * EventSource only does GET, so the stream is read from fetch()'s body here.
 * /api/chat sends, each with a JSON payload:
 *   start  {conversation_id, message_id}
 *   token  {text}                       (a piece of the answer, in order)
 *   done   {answer, citations, answered_from_docs, checks, conversation_id, message_id}
 *   error  {error: {type, message}}
 */

// An incremental parser: push() text as it arrives (events may be split
// anywhere, even inside a "\r\n"), end() when the stream is over.
// onEvent(name, data) gets each event's raw data string.
export function createSSEParser(onEvent) {
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

// Read a response body to its end, calling onEvent(name, data) with each
// event's JSON payload (an event whose payload is not JSON is skipped). A
// network failure or an abort rejects, as fetch() itself would.
export async function readEventStream(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8");
  const parser = createSSEParser(function (name, raw) {
    let data = null;
    try {
      data = raw ? JSON.parse(raw) : {};
    } catch (e) {
      return; // ignore malformed event payloads
    }
    onEvent(name, data);
  });
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    parser.push(decoder.decode(chunk.value, { stream: true }));
  }
  parser.push(decoder.decode());
  parser.end();
}
