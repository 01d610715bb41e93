// A tiny element builder: h('a', { href, class: 'x' }, 'text', child). Text is always set as text, never as
// HTML, so names and labels from the registry cannot inject markup.
export function h(tag, attributes, ...children) {
  const element = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the children of `element`. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** Announces `text` to screen readers (the page's live region). */
export function announce(text) {
  const status = document.getElementById('status');
  if (status) status.textContent = text;
}

/** A table whose cells carry their column's name, so narrow screens can show rows as labelled blocks. */
export function table({ caption, columns, rows, empty, className }) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: className ?? 'data' },
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((column) => column instanceof Node ? column : h('th', { scope: 'col' }, column)))),
      h('tbody', {}, rows.length > 0
        ? rows.map((cells) => h('tr', {}, cells.map((cell, i) => h('td', { 'data-label': label(columns[i]) }, cell))))
        : h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, empty ?? 'Nothing here.')))));
}

function label(column) {
  return column instanceof Node ? column.textContent.replace(/[▲▼]/g, '').trim() : String(column);
}

/** A button that copies `text()` to the clipboard and says so. */
export function copyButton(text, what) {
  const button = h('button', { type: 'button', class: 'copy', 'aria-label': `Copy ${what}` }, 'Copy');
  button.addEventListener('click', async () => {
    const value = text();
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      // No clipboard API outside a secure context: select the text in a scratch field and copy that.
      const scratch = h('textarea', { class: 'visually-hidden', readonly: true });
      scratch.value = value;
      document.body.append(scratch);
      scratch.select();
      document.execCommand('copy');
      scratch.remove();
    }
    button.textContent = 'Copied';
    announce(`${what} copied`);
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  });
  return button;
}
