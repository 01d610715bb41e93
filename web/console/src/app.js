// The console: a single page under /ui/ drawn from the registry's JSON API (/api/v1). Plain DOM, no
// framework: six pages of tables, forms and small SVG charts do not need one (docs/console.md).
import { api } from './lib/api.js';
import { fill, h } from './lib/dom.js';
import { repositoriesPage } from './pages/repositories.js';
import { repositoryPage } from './pages/repository.js';
import { manifestPage } from './pages/manifest.js';
import { bundlesPage } from './pages/bundles.js';
import { storagePage } from './pages/storage.js';
import { clusterPage } from './pages/cluster.js';

const routes = [
  [/^\/ui\/?$/, repositoriesPage],
  [/^\/ui\/repositories\/(.+)\/manifests\/([a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$/, manifestPage],
  [/^\/ui\/repositories\/(.+?)\/?$/, repositoryPage],
  [/^\/ui\/bundles\/?$/, bundlesPage],
  [/^\/ui\/storage\/?$/, storagePage],
  [/^\/ui\/cluster\/?$/, clusterPage],
];

const main = document.getElementById('main');
const context = { info: null, ready: null, navigate };
let rendering = 0;

async function render(moveFocus) {
  const token = ++rendering;
  const path = location.pathname;
  const match = routes.map(([pattern, page]) => [pattern.exec(path), page]).find(([found]) => found);
  const view = h('div', { class: 'page' });
  let title = 'Not found';
  let section = null;
  try {
    if (!match) {
      fill(view, h('h1', {}, 'Not found'), h('p', {}, 'No console page has this address. ', h('a', { href: '/ui/' }, 'Go to the repositories.')));
    } else {
      const [found, page] = match;
      const params = found.slice(1).map((part) => part.split('/').map(decodeURIComponent).join('/'));
      ({ title, section } = await page(view, params, context));
    }
  } catch (error) {
    title = 'Error';
    fill(view, h('h1', {}, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, error.message));
  }
  if (token !== rendering) return;
  fill(main, view);
  document.title = `${title} · Airlock`;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (moveFocus) main.focus();
}

function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  render(!replace);
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey
    || link.target || link.origin !== location.origin || !link.pathname.startsWith('/ui/') || link.hasAttribute('download')) {
    return;
  }
  event.preventDefault();
  if (link.pathname + link.search !== location.pathname + location.search) navigate(link.pathname + link.search);
});

addEventListener('popstate', () => render(true));

// "/" jumps to the page's search box, as on most sites with one.
document.addEventListener('keydown', (event) => {
  if (event.key === '/' && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName ?? '')) {
    const search = main.querySelector('input[type=search]');
    if (search) {
      event.preventDefault();
      search.focus();
    }
  }
});

// The page's data and who is asking are fetched at once, not one after the other: the first render waits
// for its own data only (bench/console-bench.sh measures it).
function start() {
  context.ready = api('');
  context.ready.then((info) => {
    context.info = info;
    document.getElementById('user').textContent = info.user ? `Signed in as ${info.user}` : '';
    const nav = document.getElementById('nav');
    nav.querySelector('[data-section=storage]').parentElement.hidden = !info.features.storage;
    nav.querySelector('[data-section=cluster]').parentElement.hidden = !info.features.cluster;
  }, () => {
    // The page itself reports what went wrong: its own request fails the same way.
  });
  render(false);
}

start();
