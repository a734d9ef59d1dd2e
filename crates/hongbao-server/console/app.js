/*
 * hongbao console: a dependency-free single-page app over the /v1 API, in
 * native ES modules with no build step. This entry holds the router and the
 * lifetime of a view; i18n.js has the labels, state.js what outlives a view,
 * lib/ the helpers and views/ one module per screen.
 *
 * - The API key lives in sessionStorage only (gone when the tab closes) and
 *   travels in the Authorization header, never in a URL.
 * - Every piece of data reaches the DOM through textContent / text nodes
 *   (the `h` helper of lib/dom.js); nothing is ever assigned to innerHTML.
 * - Money is integer fen end to end: parsed from yuan strings and formatted
 *   back with integer arithmetic, never through a float.
 * - Views poll while shown; leaving a view (hash change, sign-out, language
 *   switch) cancels its timers and makes its late answers no-ops.
 */

import { switchLang, t } from './i18n.js';
import { state } from './state.js';
import { ApiError, errorText, onExpired, session } from './lib/api.js';
import { byId, fill, h } from './lib/dom.js';
import { viewSignIn } from './views/sign-in.js';
import { viewOverview } from './views/overview.js';
import { viewPayouts } from './views/payouts.js';
import { viewPayout } from './views/payout-detail.js';
import { viewTransfers } from './views/transfers.js';
import { viewTransfer } from './views/transfer-detail.js';
import { viewCampaigns } from './views/campaigns.js';
import { viewCampaign } from './views/campaign-detail.js';
import { viewPrizes } from './views/prizes.js';

// =========================================================================
// Routing, and the lifetime of a view.
// =========================================================================

const ROUTES = [
  [/^\/overview$/, 'overview', viewOverview, 'ov.title'],
  [/^\/payouts$/, 'payouts', viewPayouts, 'po.title'],
  [/^\/payouts\/([^/]+)$/, 'payouts', viewPayout, 'd.title'],
  [/^\/transfers$/, 'transfers', viewTransfers, 'tr.title'],
  [/^\/transfers\/([^/]+)$/, 'transfers', viewTransfer, 'td.title'],
  [/^\/campaigns$/, 'campaigns', viewCampaigns, 'c.title'],
  [/^\/campaigns\/([^/]+)$/, 'campaigns', viewCampaign, 'c.title'],
  [/^\/prizes$/, 'prizes', viewPrizes, 'p.title'],
];

const NAV = [
  ['overview', '#/overview', 'nav.overview'],
  ['payouts', '#/payouts', 'nav.payouts'],
  ['transfers', '#/transfers', 'nav.transfers'],
  ['campaigns', '#/campaigns', 'nav.campaigns'],
  ['prizes', '#/prizes', 'nav.prizes'],
];

// The current view: its generation number, timers and cleanups. Anything
// started by an older generation stops at its next step.
const current = { gen: 0, timers: new Set(), cleanups: [] };

function leaveView() {
  current.gen += 1;
  for (const id of current.timers) clearTimeout(id);
  current.timers.clear();
  for (const fn of current.cleanups.splice(0)) {
    try { fn(); } catch (_) { /* ignore */ }
  }
}

function makeContext(el, params) {
  const gen = current.gen;
  const alive = () => gen === current.gen && session.key() !== null;
  return {
    el,
    params,
    alive,
    /**
     * Calls fn every `ms` after the previous call finished (never two at
     * once), while the view is shown; fn returning false stops it.
     * Ticks are skipped while the tab is hidden.
     */
    poll(ms, fn) {
      let stopped = false;
      const schedule = () => {
        const id = setTimeout(async () => {
          current.timers.delete(id);
          if (!alive() || stopped) return;
          let again = true;
          if (!document.hidden) {
            try { again = (await fn()) !== false; } catch (_) { /* fn shows its errors */ }
          }
          if (again && alive() && !stopped) schedule();
        }, ms);
        current.timers.add(id);
      };
      schedule();
      return () => { stopped = true; };
    },
    onLeave(fn) { current.cleanups.push(fn); },
  };
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/overview';
  const at = raw.indexOf('?');
  const path = at < 0 ? raw : raw.slice(0, at);
  const params = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
  return { path, params };
}

function renderApp() {
  renderShell();
  renderView();
}

function renderShell() {
  document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
  const signedIn = session.key() !== null;
  const root = byId('app');
  fill(root,
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '#/overview' },
        h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '红'),
        h('span', null, t('brand'))),
      signedIn
        ? h('nav', { class: 'nav', id: 'nav', 'aria-label': t('nav.label') },
          NAV.map(([name, href, key]) => h('a', { href, 'data-nav': name, id: `nav-${name}` }, t(key))))
        : null,
      h('div', { class: 'topbar-actions' },
        h('button', {
          id: 'lang-toggle', type: 'button', class: 'btn btn-ghost btn-small',
          title: t('lang.toggleTitle'), onclick: toggleLang,
        }, t('lang.toggle')),
        signedIn
          ? h('button', { id: 'sign-out', type: 'button', class: 'btn btn-small', onclick: signOut }, t('signOut'))
          : null)),
    h('main', { id: 'view', class: 'view' }));
}

function renderView() {
  leaveView();
  const view = byId('view');
  if (!view) return;
  view.replaceChildren();
  if (session.key() === null) {
    document.title = `${t('signIn.title')} · ${t('app.title')}`;
    viewSignIn(view, renderApp);
    return;
  }
  const { path, params } = parseHash();
  for (const [pattern, section, fn, titleKey] of ROUTES) {
    const m = pattern.exec(path);
    if (!m) continue;
    for (const a of document.querySelectorAll('.nav a')) {
      const active = a.dataset.nav === section;
      a.classList.toggle('active', active);
      if (active) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    document.title = `${t(titleKey)} · ${t('app.title')}`;
    const ctx = makeContext(view, params);
    let arg;
    try { arg = m[1] === undefined ? undefined : decodeURIComponent(m[1]); } catch (_) { arg = m[1]; }
    Promise.resolve()
      .then(() => fn(ctx, arg))
      .catch((err) => {
        if (err instanceof ApiError && err.unauthorized) return;
        if (ctx.alive()) view.append(h('p', { class: 'alert alert-error', role: 'alert' }, errorText(err)));
      });
    return;
  }
  location.hash = '#/overview'; // unknown route
}

function toggleLang() {
  switchLang();
  // Re-render keeps a typed-in key on the sign-in screen.
  const typed = byId('api-key');
  const key = typed ? typed.value : '';
  renderApp();
  if (typed && byId('api-key')) byId('api-key').value = key;
}

function signOut() {
  session.clear();
  state.merchants = [];
  state.signInMessage = null;
  leaveView();
  renderApp();
}

/** The key stopped working (401): back to the sign-in screen. */
function expire() {
  if (session.key() === null) return;
  session.clear();
  state.signInMessage = 'signIn.expired';
  leaveView();
  renderApp();
}

// =========================================================================
// Start.
// =========================================================================

onExpired(expire);
window.addEventListener('hashchange', () => {
  renderView();
  window.scrollTo(0, 0);
});
// A key removed in another way (e.g. devtools) is noticed on next focus.
window.addEventListener('focus', () => {
  if (session.key() === null && byId('sign-out')) renderApp();
});
renderApp();
