import { api, namePath } from '../lib/api.js';
import { fill, h, table } from '../lib/dom.js';
import { barChart, lineChart } from '../lib/charts.js';
import { ago, bytes, date, plural } from '../lib/format.js';

const shortDate = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

export async function storagePage(view) {
  const report = await api('/storage');
  const samples = [...report.samples];
  if (!samples.length || samples.at(-1).at < report.current.at) samples.push(report.current);
  const points = samples.map((s) => ({ x: new Date(s.at).getTime(), y: s.bytes }));
  const collections = [...report.collections].reverse();
  const now = Date.now();

  fill(view,
    h('h1', {}, 'Storage and garbage collection'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Stored'), h('dd', { id: 'store-size' }, bytes(report.current.bytes)),
      h('dt', {}, 'Blobs'), h('dd', {}, report.current.blobs.toLocaleString()),
      h('dt', {}, 'Repositories'), h('dd', {}, report.repositories.toLocaleString()),
      h('dt', {}, 'Measured'), h('dd', {}, h('time', { datetime: report.current.at, title: date(report.current.at) }, ago(report.current.at, now)))),
    h('section', { 'aria-labelledby': 'size-heading' },
      h('h2', { id: 'size-heading' }, 'Store size over time'),
      lineChart({ label: `Store size over time, ${plural(points.length, 'sample')}, now ${bytes(report.current.bytes)}`, points, formatY: bytes, formatX: (x) => shortDate.format(x) })),
    h('section', { 'aria-labelledby': 'gc-heading' },
      h('h2', { id: 'gc-heading' }, 'Last garbage collections'),
      barChart({
        label: `Bytes freed by the last ${plural(Math.min(collections.length, 12), 'collection')}`,
        bars: collections.slice(0, 12).map((c) => ({ label: shortDate.format(new Date(c.finishedAt)), value: c.deletedBytes })),
        formatValue: bytes,
      }),
      table({
        caption: 'Collections, newest first',
        columns: ['Finished', 'Took', 'Blobs in use', 'Blobs removed', 'Freed', 'Links removed', 'Uploads removed'],
        rows: collections.map((c) => [
          h('time', { datetime: c.finishedAt, title: date(c.finishedAt) }, ago(c.finishedAt, now)),
          `${((new Date(c.finishedAt) - new Date(c.startedAt)) / 1000).toFixed(1)} s`,
          c.markedBlobs.toLocaleString(), c.deletedBlobs.toLocaleString(), bytes(c.deletedBytes), c.deletedLinks.toLocaleString(), c.deletedUploads.toLocaleString(),
        ]),
        empty: 'No garbage collection has run on this store yet (airlock registry --gc-interval, or airlock registry gc).',
      })),
    h('section', { 'aria-labelledby': 'uploads-heading' },
      h('h2', { id: 'uploads-heading' }, 'Uploads in flight'),
      barChart({
        label: `Bytes received so far by ${plural(report.uploads.length, 'upload session')}`,
        bars: report.uploads.map((u) => ({ label: u.repository, value: u.bytes })),
        formatValue: bytes,
      }),
      table({
        columns: ['Repository', 'Started', 'Last activity', 'Received'],
        rows: report.uploads.map((u) => [
          h('a', { href: `/ui/repositories/${namePath(u.repository)}` }, u.repository),
          // A store that does not keep when a session started says nothing rather than a guess.
          u.startedAt ? h('time', { datetime: u.startedAt, title: date(u.startedAt) }, ago(u.startedAt, now)) : '—',
          h('time', { datetime: u.lastActivity, title: date(u.lastActivity) }, ago(u.lastActivity, now)),
          bytes(u.bytes),
        ]),
        empty: 'No upload in flight.',
      })));
  return { title: 'Storage', section: 'storage' };
}
