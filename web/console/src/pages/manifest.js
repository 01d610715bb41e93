import { api, namePath } from '../lib/api.js';
import { fill, h, table } from '../lib/dom.js';
import { bytes, date, mediaType, shortDigest } from '../lib/format.js';
import { referrers } from './repository.js';

export async function manifestPage(view, [name, digest]) {
  const m = await api(`/repositories/${namePath(name)}/manifests/${encodeURIComponent(digest)}`);
  const repository = `/ui/repositories/${namePath(name)}`;
  const link = (d) => h('a', { href: `${repository}/manifests/${d}` }, h('code', { title: d }, shortDigest(d)));
  const facts = [
    ['Digest', h('code', { class: 'wrap' }, m.digest)],
    ['Media type', mediaType(m.mediaType)],
    m.artifactType ? ['Artifact type', m.artifactType] : null,
    ['Manifest size', bytes(m.size)],
    ['Total size', bytes(m.totalSize)],
    ['Tags', m.tags.length ? m.tags.join(', ') : '–'],
    ['Platforms', m.platforms.length ? m.platforms.join(', ') : '–'],
    m.subject ? ['Refers to', link(m.subject.digest)] : null,
  ].filter(Boolean);

  const sections = [];
  if (m.manifests.length) {
    sections.push(h('section', { 'aria-labelledby': 'children-heading' }, h('h2', { id: 'children-heading' }, 'Manifests'),
      table({ columns: ['Platform', 'Digest', 'Media type', 'Size'], rows: m.manifests.map((c) => [c.platform ?? '–', link(c.digest), mediaType(c.mediaType), bytes(c.size)]) })));
  }
  if (m.layers.length) {
    sections.push(h('section', { 'aria-labelledby': 'layers-heading' }, h('h2', { id: 'layers-heading' }, 'Layers'),
      table({
        columns: ['#', 'Digest', 'Media type', 'Size', 'Also in'],
        rows: m.layers.map((l, i) => [
          String(i + 1), h('code', { title: l.digest }, shortDigest(l.digest)), mediaType(l.mediaType), bytes(l.size),
          l.sharedWith.length ? h('ul', { class: 'chips' }, l.sharedWith.map((r) => h('li', {}, h('a', { href: `/ui/repositories/${namePath(r)}` }, r)))) : '–',
        ]),
      })));
  }
  if (m.config) {
    const c = m.config;
    sections.push(h('section', { 'aria-labelledby': 'config-heading' }, h('h2', { id: 'config-heading' }, 'Configuration'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Created'), h('dd', {}, date(c.created)),
        c.author ? [h('dt', {}, 'Author'), h('dd', {}, c.author)] : null,
        h('dt', {}, 'Platform'), h('dd', {}, c.platform ?? '–'),
        c.entrypoint ? [h('dt', {}, 'Entrypoint'), h('dd', {}, h('code', {}, c.entrypoint.join(' ')))] : null,
        c.cmd ? [h('dt', {}, 'Command'), h('dd', {}, h('code', {}, c.cmd.join(' ')))] : null,
        h('dt', {}, 'Config'), h('dd', {}, h('code', { title: c.digest }, shortDigest(c.digest)), ` (${bytes(c.size)})`)),
      h('h3', {}, 'Labels'),
      table({ columns: ['Label', 'Value'], rows: Object.entries(c.labels ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [h('code', {}, k), v]), empty: 'No labels.' }),
      h('h3', {}, 'History'),
      table({
        className: 'data history',
        columns: ['Created', 'Step', 'Layer'],
        rows: c.history.map((step) => [date(step.created), h('code', { class: 'wrap' }, step.created_by ?? step.comment ?? '–'), step.empty_layer ? 'none' : 'yes']),
        empty: 'No history recorded.',
      })));
  }
  if (m.annotations && Object.keys(m.annotations).length) {
    sections.push(h('section', { 'aria-labelledby': 'annotations-heading' }, h('h2', { id: 'annotations-heading' }, 'Annotations'),
      table({ columns: ['Annotation', 'Value'], rows: Object.entries(m.annotations).map(([k, v]) => [h('code', {}, k), v]) })));
  }
  sections.push(h('section', { 'aria-labelledby': 'referrers-heading' }, h('h2', { id: 'referrers-heading' }, 'Referrers'),
    m.referrers.length
      ? table({ columns: ['Kind', 'Artifact type', 'Digest', 'Size'], rows: m.referrers.map((r) => [referrers(name, [r]), r.artifactType ?? '–', link(r.digest), bytes(r.size)]) })
      : h('p', { class: 'muted' }, 'No signatures, SBOMs or attestations refer to this manifest.')));

  fill(view,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/ui/' }, 'Repositories'), ' / ', h('a', { href: repository }, name), ' / '),
    h('h1', {}, m.tags.length ? `${name}:${m.tags[0]}` : `${name}@${shortDigest(m.digest)}`),
    h('dl', { class: 'facts' }, facts.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    sections);
  return { title: `${name}@${shortDigest(m.digest)}`, section: 'repositories' };
}
