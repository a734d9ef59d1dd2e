// Building blocks of the views: status badges, tables, times and form fields.

import { label, t } from '../i18n.js';
import { state } from '../state.js';
import { append, fill, h, setText, token } from './dom.js';
import { localTime } from './format.js';

// Statuses in their lifecycle order.
export const RECORD_STATUSES = ['pending', 'sending', 'sent', 'received', 'refunding', 'refunded', 'failed'];
export const PRIZE_STATUSES = ['pending', 'issuing', 'issued', 'failed'];
// A transfer bill's: the user confirms in WeChat (24 h), or it closes unpaid.
export const TRANSFER_STATUSES = [
  'pending', 'sending', 'awaiting_confirmation', 'transferring', 'succeeded', 'failed', 'cancelling', 'cancelled',
];
// Both rails' statuses (one ledger), for breakdowns that mix them.
export const PAYOUT_STATUSES = [
  'pending', 'sending', 'sent', 'received', 'refunding', 'refunded',
  'awaiting_confirmation', 'transferring', 'succeeded', 'cancelling', 'cancelled', 'failed',
];

export function statusBadge(kind, status, id) {
  return h('span', {
    class: `status status-${token(status)}`,
    'data-status': status == null ? '' : String(status),
    id,
  }, label(`st.${kind}`, status));
}

/** Updates a status badge in place (keeps the element, and its id). */
export function updateBadge(el, kind, status) {
  el.className = `status status-${token(status)}`;
  el.dataset.status = status == null ? '' : String(status);
  setText(el, label(`st.${kind}`, status));
}

export const dash = () => h('span', { class: 'muted' }, '—');
export const mono = (text) => (text == null || text === '' ? dash() : h('span', { class: 'mono' }, text));

/** The API gives a message in both languages: the current one, else the other. */
export function inLang(en, zh) {
  return state.lang === 'zh' ? zh || en : en || zh;
}

export function tableWrap(table) {
  return h('div', { class: 'table-wrap' }, table);
}

export function thead(keys) {
  return h('thead', null, h('tr', null, keys.map((k) => {
    const [key, cls] = Array.isArray(k) ? k : [k, null];
    return h('th', { class: cls, scope: 'col' }, key ? t(key) : '');
  })));
}

export function emptyRow(colspan, text) {
  return h('tr', { class: 'empty' }, h('td', { colspan }, text));
}

/**
 * Puts one row per item into tbody, keyed by `data-id`, reusing the rows
 * (and cells) that did not change: auto-refresh then leaves the DOM, the
 * text selection and a test driver's element references alone.
 * `cells(item)` returns [[signature, () => content, className], ...].
 */
export function syncRows(tbody, items, cells, onRowClick) {
  const existing = new Map();
  for (const tr of tbody.querySelectorAll('tr[data-id]')) existing.set(tr.dataset.id, tr);
  const rows = items.map((item) => {
    let tr = existing.get(item.id);
    if (!tr) {
      tr = h('tr', { 'data-id': item.id });
      if (onRowClick) {
        tr.classList.add('clickable');
        tr.addEventListener('click', (e) => {
          // Links, buttons and text selections keep their own behaviour.
          if (e.target.closest('a, button, summary, details')) return;
          if (String(window.getSelection() || '')) return;
          onRowClick(tr.dataset.id);
        });
      }
    }
    patchCells(tr, cells(item));
    return tr;
  });
  tbody.replaceChildren(...rows);
}

function patchCells(tr, cells) {
  while (tr.cells.length < cells.length) tr.append(h('td'));
  while (tr.cells.length > cells.length) tr.lastChild.remove();
  cells.forEach(([sig, build, cls], i) => {
    const td = tr.cells[i];
    const signature = `${state.lang}|${JSON.stringify(sig)}`;
    if (td.dataset.sig === signature) return;
    td.replaceChildren();
    append(td, [build()]);
    td.className = cls || '';
    td.dataset.sig = signature;
  });
}

export const ATTEMPT_COLUMNS = ['col.time', 'col.api', 'col.outcome', 'col.errCode', ['col.latency', 'num'], 'col.detail'];

/** A record's calls to WeChat (`/attempts`), one row each, into tbody. */
export function fillAttempts(tbody, list) {
  if (!list.length) {
    fill(tbody, emptyRow(ATTEMPT_COLUMNS.length, t('d.noAttempts')));
    return;
  }
  fill(tbody, ...list.map((a, i) => h('tr', { 'data-index': i },
    h('td', { class: 'nowrap' }, timeEl(a.started_at)),
    h('td', null, mono(a.api)),
    h('td', null, h('span', { class: `outcome outcome-${token(a.outcome)}` }, a.outcome)),
    h('td', null, mono(a.err_code)),
    h('td', { class: 'num' }, a.latency_ms == null ? '—' : `${a.latency_ms} ms`),
    h('td', { class: 'wrap' },
      a.detail || (a.answer ? null : dash()),
      a.answer ? h('details', { class: 'answer' }, h('summary', null, t('d.answer')), h('pre', null, a.answer)) : null))));
}

/** A time element: local time shown, the UTC original as its tooltip. */
export function timeEl(iso) {
  if (!iso) return dash();
  return h('time', { datetime: iso, title: iso, class: 'nowrap' }, localTime(iso));
}

/** WeChat writes times in Beijing time without a zone: shown locally too. */
export function beijingTimeEl(text) {
  if (!text) return dash();
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})$/.exec(String(text).trim());
  return m ? timeEl(`${m[1]}T${m[2]}+08:00`) : h('span', null, text);
}

/** Sorts status keys: the lifecycle order first, unknown ones after. */
export function statusOrder(keys, order) {
  return [...keys].sort((a, b) => {
    const ia = order.indexOf(a) < 0 ? 99 : order.indexOf(a);
    const ib = order.indexOf(b) < 0 ? 99 : order.indexOf(b);
    return ia - ib || a.localeCompare(b);
  });
}

export function merchantSelect(id, value, withAll, onChange) {
  return h('select', { id, onchange: (e) => onChange(e.target.value) },
    withAll ? h('option', { value: '' }, t('f.all')) : null,
    state.merchants.map((mch) => h('option', { value: mch.name, selected: mch.name === value }, mch.name)));
}

export function field(labelKey, control, extra) {
  return h('div', { class: 'field' }, h('label', { for: control.id }, t(labelKey)), control, extra || null);
}
