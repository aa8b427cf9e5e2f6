// app.js - the UI's entry point: picks the page from the URL (everything a
// view shows is in its path and query string, so every view is a link),
// follows links inside /ui/ without reloading, keeps the theme, and marks
// the document ready once a page has drawn (html[data-ready="true"], or
// "error" with the reason shown) - the state the browser tests wait for.
import { h, clear } from './util.js';

const PAGES = {
  fleet: () => import('./pages/fleet.js'),
  scenario: () => import('./pages/scenario.js'),
  cluster: () => import('./pages/cluster.js'),
  query: () => import('./pages/query.js'),
  alerts: () => import('./pages/alerts.js'),
  rules: () => import('./pages/alerts.js'),
  sources: () => import('./pages/sources.js'),
  cardinality: () => import('./pages/cardinality.js'),
};

// "/ui/cluster/etcd-a/troubleshoot" -> {page: 'cluster', args: ['etcd-a', 'troubleshoot']}
function route() {
  const rest = location.pathname.replace(/^\/ui\/?/, '');
  const parts = rest.split('/').filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || '', args: parts.slice(1) };
}

let generation = 0;

async function render() {
  const gen = ++generation;
  const root = document.documentElement;
  const { page, args } = route();
  if (!page) {
    history.replaceState(null, '', '/ui/fleet' + location.search);
    return render();
  }
  root.dataset.ready = 'false';
  root.dataset.page = page;
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.nav === page || (a.dataset.nav === 'fleet' && ['scenario', 'cluster'].includes(page)));
  }
  const main = document.getElementById('main');
  const load = PAGES[page];
  if (!load) {
    clear(main).append(h('p', { class: 'error' }, `No page "${page}".`));
    root.dataset.ready = 'error';
    return;
  }
  try {
    const mod = await load();
    const box = h('div', { class: 'page' });
    clear(main).append(box);
    await mod.render(box, { page, args, isCurrent: () => gen === generation, rerender: render });
    if (gen === generation) root.dataset.ready = 'true';
  } catch (e) {
    if (gen !== generation) return;
    clear(main).append(h('div', { class: 'error' }, h('strong', {}, 'This page could not be drawn: '), e.message));
    root.dataset.ready = 'error';
  }
}

// Same-document navigation for links into /ui/ (plain clicks only).
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a');
  if (!a || a.target || a.origin !== location.origin || !a.pathname.startsWith('/ui/') || a.pathname.startsWith('/ui/a/')) return;
  e.preventDefault();
  navigate(a.pathname + a.search);
});

export function navigate(url) {
  if (url !== location.pathname + location.search) history.pushState(null, '', url);
  window.scrollTo(0, 0);
  render();
}

window.addEventListener('popstate', render);

// Themes: auto (the system's), light, dark; a preference of this browser.
const THEMES = ['auto', 'light', 'dark'];
function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  const b = document.getElementById('theme');
  b.textContent = t;
  b.setAttribute('aria-label', `theme: ${t}`);
}
let theme = localStorage.getItem('rwgate.theme');
if (!THEMES.includes(theme)) theme = 'auto';
applyTheme(theme);
document.getElementById('theme').addEventListener('click', () => {
  theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
  localStorage.setItem('rwgate.theme', theme);
  applyTheme(theme);
  render(); // charts take their colours from the theme
});
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { if (theme === 'auto') render(); });

render();
