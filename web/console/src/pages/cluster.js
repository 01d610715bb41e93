import { api } from '../lib/api.js';
import { fill, h, table } from '../lib/dom.js';
import { ratioRing } from '../lib/charts.js';
import { ago, date, plural } from '../lib/format.js';

const day = 24 * 60 * 60 * 1000;

/** How soon a certificate expires, as the class and words the page shows. */
function expiry(notAfter, now) {
  if (!notAfter) return [null, '–'];
  const left = new Date(notAfter).getTime() - now;
  if (left <= 0) return ['danger', `expired ${ago(notAfter, now)}`];
  if (left < 30 * day) return ['warn', `expires ${ago(notAfter, now)}`];
  return [null, `expires ${ago(notAfter, now)}`];
}

export async function clusterPage(view) {
  const cluster = await api('/cluster');
  const now = Date.now();
  const expiring = cluster.nodes.filter((n) => expiry(n.certificateNotAfter, now)[0]);
  fill(view,
    h('h1', {}, 'Cluster'),
    expiring.length
      ? h('p', { class: 'banner warn', role: 'alert' }, `${plural(expiring.length, 'node certificate')} expired or expiring within 30 days: ${expiring.map((n) => n.name).join(', ')}`)
      : null,
    h('div', { class: 'split' },
      h('section', { 'aria-labelledby': 'peers-heading' },
        h('h2', { id: 'peers-heading' }, 'Peer hit ratio'),
        cluster.peerHitRatio === null || cluster.peerHitRatio === undefined
          ? h('p', { class: 'muted' }, 'No peer mirror reports yet.')
          : ratioRing({ label: `Layers found at a peer: ${Math.round(cluster.peerHitRatio * 100)}%`, ratio: cluster.peerHitRatio })),
      h('section', { 'aria-labelledby': 'nodes-heading' },
        h('h2', { id: 'nodes-heading' }, 'Nodes'),
        table({
          columns: ['Node', 'Address', 'Role', 'Last seen', 'Certificate', 'Images'],
          rows: cluster.nodes.map((n) => {
            const [level, words] = expiry(n.certificateNotAfter, now);
            return [
              n.name, n.address ?? '–', n.role ?? '–',
              n.lastSeen ? h('time', { datetime: n.lastSeen, title: date(n.lastSeen) }, ago(n.lastSeen, now)) : '–',
              h('span', { class: level ? `badge ${level}` : null, title: date(n.certificateNotAfter) }, words),
              n.images.length
                ? h('details', {}, h('summary', {}, plural(n.images.length, 'image')), h('ul', { class: 'images' }, n.images.map((i) => h('li', {}, h('code', {}, i)))))
                : '–',
            ];
          }),
          empty: 'No node has joined yet.',
        }))));
  return { title: 'Cluster', section: 'cluster' };
}
