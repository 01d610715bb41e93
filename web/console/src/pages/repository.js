import { api, namePath } from '../lib/api.js';
import { announce, copyButton, fill, h, table } from '../lib/dom.js';
import { ago, bytes, date, mediaType, plural, referrerKind, shortDigest } from '../lib/format.js';
import { pullCommand, tools } from '../lib/pull.js';

export async function repositoryPage(view, [name], context) {
  const [first, info] = await Promise.all([api(`/repositories/${namePath(name)}`), context.ready]);
  let detail = first;
  let tags = detail.tags;
  while (detail.next && tags.length < 1000) {
    detail = await api(`/repositories/${namePath(name)}?cursor=${encodeURIComponent(detail.next)}`);
    tags = tags.concat(detail.tags);
  }
  const summary = detail.repository;
  const user = info?.user;
  const state = { tool: 'ctr', tag: tags[0]?.tag ?? 'latest', filter: '', signed: 'all' };

  const command = h('code', { id: 'pull-command' });
  const tagSelect = h('select', { id: 'pull-tag' }, tags.map((t) => h('option', { value: t.tag }, t.tag)));
  const toolChoice = h('fieldset', { class: 'choice' }, h('legend', {}, 'Tool'),
    tools.map(([key, text]) => h('label', {},
      h('input', { type: 'radio', name: 'pull-tool', value: key, checked: key === state.tool, onchange: () => { state.tool = key; drawCommand(); } }),
      ` ${text}`)));
  tagSelect.addEventListener('change', () => { state.tag = tagSelect.value; drawCommand(); });
  function drawCommand() {
    command.textContent = pullCommand(state.tool, name, state.tag, user);
  }
  drawCommand();

  const filter = h('input', { type: 'search', id: 'tag-filter', placeholder: 'Filter tags', autocomplete: 'off', 'aria-controls': 'tags' });
  const signedSelect = h('select', { id: 'tag-signed' },
    h('option', { value: 'all' }, 'All tags'),
    h('option', { value: 'signed' }, 'With referrers (signed, SBOM…)'),
    h('option', { value: 'unsigned' }, 'Without referrers'));
  const results = h('div', { id: 'tags' });
  function drawTags() {
    const shown = tags.filter((t) => t.tag.toLowerCase().includes(state.filter.toLowerCase())
      && (state.signed === 'all' || (state.signed === 'signed') === t.referrers.length > 0));
    const now = Date.now();
    fill(results, table({
      caption: `Tags of ${name}`,
      columns: ['Tag', 'Digest', 'Media type', 'Platforms', 'Size', 'Created', 'Referrers', 'Pull'],
      rows: shown.map((t) => [
        h('a', { href: `/ui/repositories/${namePath(name)}/manifests/${t.digest}` }, t.tag),
        h('code', { title: t.digest }, shortDigest(t.digest)),
        mediaType(t.artifactType ?? t.mediaType),
        t.platforms.length ? h('ul', { class: 'chips' }, t.platforms.map((p) => h('li', {}, p))) : '–',
        bytes(t.size),
        t.created ? h('time', { datetime: t.created, title: date(t.created) }, ago(t.created, now)) : '–',
        referrers(name, t.referrers),
        copyButton(() => pullCommand(state.tool, name, t.tag, user), `pull command for ${t.tag}`),
      ]),
      empty: tags.length ? 'No tag matches.' : 'This repository has no tags.',
    }));
    announce(`${plural(shown.length, 'tag')} shown`);
  }
  filter.addEventListener('input', () => { state.filter = filter.value.trim(); drawTags(); });
  signedSelect.addEventListener('change', () => { state.signed = signedSelect.value; drawTags(); });
  drawTags();

  fill(view,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/ui/' }, 'Repositories'), ' / '),
    h('h1', {}, name),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Tags'), h('dd', {}, summary.tags.toLocaleString()),
      h('dt', {}, 'Total size'), h('dd', {}, bytes(summary.size)),
      h('dt', {}, 'Last push'), h('dd', {}, summary.lastPush ? h('time', { datetime: summary.lastPush, title: date(summary.lastPush) }, ago(summary.lastPush)) : '–')),
    tags.length ? h('section', { class: 'panel', 'aria-labelledby': 'pull-heading' },
      h('h2', { id: 'pull-heading' }, 'Pull'),
      h('div', { class: 'pull-controls' }, h('label', { for: 'pull-tag' }, 'Tag'), tagSelect, toolChoice),
      h('div', { class: 'command' }, command, copyButton(() => command.textContent, 'pull command'))) : null,
    h('section', { 'aria-labelledby': 'tags-heading' },
      h('h2', { id: 'tags-heading' }, 'Tags'),
      h('form', { class: 'toolbar', role: 'search', onsubmit: (event) => event.preventDefault() },
        h('label', { for: 'tag-filter' }, 'Filter'), filter,
        h('label', { for: 'tag-signed' }, 'Show'), signedSelect),
      results));
  return { title: name, section: 'repositories' };
}

/** Referrers grouped by kind (signatures, SBOMs, attestations), each linking to its manifest. */
export function referrers(name, list) {
  if (!list.length) return '–';
  const groups = new Map();
  for (const r of list) {
    const kind = referrerKind(r.artifactType);
    groups.set(kind, [...(groups.get(kind) ?? []), r]);
  }
  return h('ul', { class: 'chips' }, [...groups].map(([kind, items]) => h('li', { class: `referrer referrer-${kind.replace(/[^a-z]/gi, '')}` },
    items.map((r, i) => h('a', { href: `/ui/repositories/${namePath(name)}/manifests/${r.digest}`, title: `${r.artifactType ?? r.mediaType} ${r.digest}` },
      items.length > 1 ? `${kind} ${i + 1}` : kind)))));
}
