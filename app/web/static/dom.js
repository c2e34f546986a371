/* docchat: the one DOM helper both pages share.
 *
 * Text goes in through textContent only, so untrusted strings (model output,
 * document titles, user input) can never become markup.
 */

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// A table's head and body from headings and rows of cells: text (through
// textContent) or nodes the caller built.
export function tableParts(headings, rows) {
  const tr = el("tr");
  headings.forEach((h) => tr.appendChild(el("th", null, h)));
  const head = el("thead");
  head.appendChild(tr);
  const body = el("tbody");
  rows.forEach(function (cells) {
    const row = el("tr");
    cells.forEach(function (c) {
      const td = el("td");
      if (c instanceof Node) td.appendChild(c);
      else td.textContent = c === null || c === undefined ? "" : String(c);
      row.appendChild(td);
    });
    body.appendChild(row);
  });
  return [head, body];
}
