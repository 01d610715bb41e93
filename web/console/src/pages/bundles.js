import { api, namePath } from '../lib/api.js';
import { announce, copyButton, fill, h, table } from '../lib/dom.js';
import { ago, date, plural, shortDigest } from '../lib/format.js';

export async function bundlesPage(view) {
  const { records } = await api('/bundles');
  const now = Date.now();
  const history = table({
    caption: 'Loads into this registry, newest first',
    columns: ['Loaded', 'File', 'By', 'Images'],
    rows: records.map((r) => [
      h('time', { datetime: r.loadedAt, title: date(r.loadedAt) }, ago(r.loadedAt, now)),
      h('code', {}, r.file),
      r.user ?? 'anonymous',
      h('ul', { class: 'images' }, r.images.map((i) => h('li', {},
        h('a', { href: `/ui/repositories/${namePath(i.repository)}/manifests/${i.digest}` }, `${i.repository}${i.tag ? `:${i.tag}` : ''}`),
        ' ', h('code', { title: i.digest }, shortDigest(i.digest)),
        i.source ? h('span', { class: 'muted' }, ` from ${i.source}`) : null))),
    ]),
    empty: 'No bundle has been loaded into this registry with airlock images load yet.',
  });

  fill(view,
    h('h1', {}, 'Bundles'),
    h('section', { 'aria-labelledby': 'loads-heading' }, h('h2', { id: 'loads-heading' }, 'Loaded'), history),
    builder());
  return { title: 'Bundles', section: 'bundles' };
}

/** Pick repositories and tags; the page writes the `airlock images save` command that bundles them. */
function builder() {
  const selected = new Set();
  const search = h('input', { type: 'search', id: 'bundle-search', placeholder: 'Find repositories', autocomplete: 'off', 'aria-controls': 'bundle-candidates' });
  const candidates = h('div', { id: 'bundle-candidates' });
  const file = h('input', { type: 'text', id: 'bundle-file', value: 'bundle.tar.zst', spellcheck: 'false' });
  const withReferrers = h('input', { type: 'checkbox', id: 'bundle-referrers', checked: true });
  const command = h('code', { id: 'save-command' });
  const chosen = h('ul', { id: 'bundle-selection', class: 'chips' });

  function drawCommand() {
    const references = [...selected].sort();
    command.textContent = references.length
      ? ['airlock images save', withReferrers.checked ? '--include-referrers' : '', '-o', file.value.trim() || 'bundle.tar.zst', ...references.map((r) => `${location.host}/${r}`)].filter(Boolean).join(' ')
      : 'Select tags below to build the command.';
    fill(chosen, references.map((r) => h('li', {}, r, ' ',
      h('button', { type: 'button', class: 'link', 'aria-label': `Remove ${r}`, onclick: () => toggle(r, false) }, '×'))));
  }

  function toggle(reference, on) {
    if (on) selected.add(reference);
    else selected.delete(reference);
    for (const box of candidates.querySelectorAll('input[type=checkbox]')) {
      if (box.value === reference) box.checked = on;
    }
    drawCommand();
    announce(`${plural(selected.size, 'image')} selected`);
  }

  async function showTags(name, holder, button) {
    button.setAttribute('aria-expanded', 'true');
    const detail = await api(`/repositories/${namePath(name)}?limit=200`);
    fill(holder, h('ul', { class: 'checks' }, detail.tags.map((t) => {
      const reference = `${name}:${t.tag}`;
      const id = `pick-${reference.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
      return h('li', {}, h('input', { type: 'checkbox', id, value: reference, checked: selected.has(reference), onchange: (event) => toggle(reference, event.target.checked) }),
        h('label', { for: id }, ` ${t.tag}`));
    })));
  }

  let typing;
  async function find() {
    const params = new URLSearchParams({ limit: '25' });
    if (search.value.trim()) params.set('q', search.value.trim());
    const page = await api(`/repositories?${params}`);
    fill(candidates, h('ul', { class: 'candidates' }, page.repositories.map((r) => {
      const holder = h('div', {});
      const button = h('button', { type: 'button', class: 'link', 'aria-expanded': 'false', 'data-repository': r.name }, `${r.name} (${plural(r.tags, 'tag')})`);
      button.addEventListener('click', () => showTags(r.name, holder, button).catch((error) => fill(holder, h('p', { class: 'error' }, error.message))));
      return h('li', {}, button, holder);
    })), page.repositories.length ? null : h('p', { class: 'muted' }, 'No repository matches.'));
  }
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => find().catch((error) => fill(candidates, h('p', { class: 'error' }, error.message))), 150);
  });
  file.addEventListener('input', drawCommand);
  withReferrers.addEventListener('change', drawCommand);
  drawCommand();
  find().catch((error) => fill(candidates, h('p', { class: 'error' }, error.message)));

  return h('section', { class: 'panel', 'aria-labelledby': 'make-heading' },
    h('h2', { id: 'make-heading' }, 'Make a bundle'),
    h('p', {}, 'Choose images; copy the command and run it where this registry is reachable. The archive it writes goes across the gap and into another registry with ', h('code', {}, 'airlock images load'), '.'),
    h('div', { class: 'command' }, command, copyButton(() => command.textContent, 'save command')),
    h('div', { class: 'toolbar' },
      h('label', { for: 'bundle-file' }, 'Archive'), file,
      h('label', { class: 'inline' }, withReferrers, ' with signatures and SBOMs')),
    h('h3', {}, 'Selected'), chosen,
    h('form', { class: 'toolbar', role: 'search', onsubmit: (event) => event.preventDefault() },
      h('label', { for: 'bundle-search' }, 'Find'), search),
    candidates);
}
