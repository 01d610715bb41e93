import { api, namePath } from '../lib/api.js';
import { announce, fill, h, table } from '../lib/dom.js';
import { ago, bytes, date, plural } from '../lib/format.js';

const columns = [
  ['name', 'Repository', 'ascending'],
  ['tags', 'Tags', 'descending'],
  ['size', 'Total size', 'descending'],
  ['pushed', 'Last push', 'descending'],
];

export async function repositoriesPage(view, _params, context) {
  const url = new URL(location.href);
  const state = {
    q: url.searchParams.get('q') ?? '',
    sort: columns.some(([key]) => key === url.searchParams.get('sort')) ? url.searchParams.get('sort') : 'name',
    order: url.searchParams.get('order') === 'desc' ? 'desc' : 'asc',
  };
  const search = h('input', { type: 'search', id: 'repository-search', name: 'q', value: state.q, placeholder: 'Filter by name', autocomplete: 'off', 'aria-controls': 'repositories' });
  const results = h('div', { id: 'repositories' });
  const more = h('button', { type: 'button', class: 'more', hidden: true }, 'Show more');
  let rows = [];
  let next = null;
  let loading = 0;

  async function load(append) {
    const token = ++loading;
    const params = new URLSearchParams({ sort: state.sort, order: state.order, limit: '50' });
    if (state.q) params.set('q', state.q);
    if (append && next) params.set('cursor', next);
    const page = await api(`/repositories?${params}`);
    if (token !== loading) return;
    rows = append ? rows.concat(page.repositories) : page.repositories;
    next = page.next;
    draw();
    announce(`${plural(rows.length, 'repository', 'repositories')} shown${next ? ', more available' : ''}`);
    performance.mark('airlock:repositories-rendered');
  }

  function header([key, text, firstOrder]) {
    const active = state.sort === key;
    const sorted = active ? (state.order === 'asc' ? 'ascending' : 'descending') : undefined;
    const button = h('button', { type: 'button', class: 'sort', 'data-sort': key }, text, h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, active ? (state.order === 'asc' ? '▲' : '▼') : ''));
    button.addEventListener('click', () => {
      if (state.sort === key) state.order = state.order === 'asc' ? 'desc' : 'asc';
      else [state.sort, state.order] = [key, firstOrder === 'ascending' ? 'asc' : 'desc'];
      remember();
      load(false).catch(fail);
    });
    return h('th', { scope: 'col', 'aria-sort': sorted ?? 'none' }, button);
  }

  function draw() {
    const now = Date.now();
    const focused = document.activeElement?.dataset?.sort;
    fill(results, table({
      caption: state.q ? `Repositories matching “${state.q}”` : 'Repositories',
      columns: columns.map(header),
      rows: rows.map((r) => [
        h('a', { href: `/ui/repositories/${namePath(r.name)}` }, r.name),
        r.tags.toLocaleString(),
        bytes(r.size),
        h('time', { datetime: r.lastPush ?? '', title: date(r.lastPush) }, ago(r.lastPush, now)),
      ]),
      empty: state.q ? 'No repository you may pull matches this filter.' : 'No repositories you may pull yet.',
    }));
    more.hidden = !next;
    if (focused) results.querySelector(`[data-sort="${focused}"]`)?.focus();
  }

  function remember() {
    const params = new URLSearchParams();
    if (state.q) params.set('q', state.q);
    if (state.sort !== 'name') params.set('sort', state.sort);
    if (state.order !== 'asc') params.set('order', state.order);
    history.replaceState(null, '', `/ui/${params.size ? `?${params}` : ''}`);
  }

  function fail(error) {
    fill(results, h('p', { class: 'error', role: 'alert' }, error.message));
  }

  let typing;
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      state.q = search.value.trim();
      remember();
      load(false).catch(fail);
    }, 150);
  });
  more.addEventListener('click', () => load(true).catch(fail));

  fill(view,
    h('h1', {}, 'Repositories'),
    h('form', { class: 'toolbar', role: 'search', onsubmit: (event) => event.preventDefault() },
      h('label', { for: 'repository-search' }, 'Filter'), search),
    results,
    more);
  await load(false);
  return { title: 'Repositories', section: 'repositories' };
}
