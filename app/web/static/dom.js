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
