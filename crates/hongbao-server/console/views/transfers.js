// Transfers: transfer bills (APIv3 商家转账), their filters and the table.

import { label, t } from '../i18n.js';
import { emptyTransferFilters, state } from '../state.js';
import { api, enc, errorText, loadMerchants, PAGE_SIZE } from '../lib/api.js';
import { add, fill, h, setText, showAlert } from '../lib/dom.js';
import { localDateToRfc3339, localTime, yuan } from '../lib/format.js';
import {
  emptyRow,
  field,
  merchantSelect,
  mono,
  statusBadge,
  syncRows,
  tableWrap,
  thead,
  timeEl,
  TRANSFER_STATUSES,
} from '../lib/ui.js';

const COLUMNS = [
  'col.id', 'col.status', 'col.outBillNo', 'col.openid', ['col.amount', 'num'], ['col.attempts', 'num'], 'col.created',
];

export async function viewTransfers(ctx) {
  // Filters given in the link replace the current ones; the hash is then
  // cleaned so a reload does not re-apply them.
  const linkFilters = ['status', 'merchant', 'openid', 'out_bill_no', 'campaign_id'];
  if (linkFilters.some((k) => ctx.params.has(k))) {
    state.transferFilters = emptyTransferFilters();
    for (const k of linkFilters) state.transferFilters[k] = ctx.params.get(k) || '';
    state.transferApplied = { ...state.transferFilters };
    state.transferOffset = 0;
    history.replaceState(null, '', '#/transfers');
  }
  if (state.merchants.length === 0) {
    try { await loadMerchants(); } catch (err) { if (err.unauthorized) return; }
    if (!ctx.alive()) return;
  }

  const tableError = h('p', { class: 'alert alert-error', id: 'transfers-error', hidden: true });
  const updated = h('span', { class: 'muted small', id: 'transfers-updated' });
  const tbody = h('tbody');
  const pagerInfo = h('span', { class: 'muted small', id: 'transfers-page-info' });
  const prev = h('button', { type: 'button', class: 'btn btn-small', id: 'transfers-prev', disabled: true }, t('pager.prev'));
  const next = h('button', { type: 'button', class: 'btn btn-small', id: 'transfers-next', disabled: true }, t('pager.next'));

  add(ctx.el,
    h('div', { class: 'page-head' }, h('h1', null, t('tr.title'))),
    h('p', { class: 'hint' }, t('tr.intro')),
    filtersForm(),
    h('section', { class: 'card' },
      h('div', { class: 'card-head' },
        h('h2', null, t('tr.list')),
        h('span', { class: 'muted small' }, t('autoRefresh', { s: 3 }), ' · ', updated)),
      tableError,
      tableWrap(h('table', { id: 'transfers-table' }, thead(COLUMNS), tbody)),
      h('div', { class: 'pager' }, pagerInfo, h('div', { class: 'pager-buttons' }, prev, next))));

  let seq = 0;
  let meta = null;

  async function loadTable() {
    const mySeq = ++seq;
    const f = state.transferApplied;
    const query = {
      status: f.status,
      merchant: f.merchant,
      openid: f.openid.trim(),
      out_bill_no: f.out_bill_no.trim(),
      campaign_id: f.campaign_id.trim(),
      created_from: f.from ? localDateToRfc3339(f.from, 0) : '',
      // "to" is inclusive in the form; the API's created_to is exclusive.
      created_to: f.to ? localDateToRfc3339(f.to, 1) : '',
      offset: state.transferOffset,
      limit: PAGE_SIZE,
    };
    try {
      const data = await api('/v1/transfers', { query });
      if (!ctx.alive() || mySeq !== seq) return;
      // A page past the end (records went away, or filters narrowed): go back.
      if (data.objects.length === 0 && data.meta.total_count > 0 && state.transferOffset > 0) {
        state.transferOffset = Math.max(0, data.meta.total_count - PAGE_SIZE);
        await loadTable();
        return;
      }
      meta = data.meta;
      showAlert(tableError, '');
      renderRows(data.objects);
      renderPager(meta);
      setText(updated, t('updatedAt', { time: localTime(new Date().toISOString()) }));
    } catch (err) {
      if (err.unauthorized || !ctx.alive() || mySeq !== seq) return;
      showAlert(tableError, errorText(err));
    }
  }

  function renderRows(records) {
    if (records.length === 0) {
      fill(tbody, emptyRow(COLUMNS.length, t('empty')));
      return;
    }
    syncRows(tbody, records, (r) => [
      [r.id, () => h('a', { href: `#/transfers/${enc(r.id)}`, class: 'detail-link mono' }, r.id)],
      [r.status, () => statusBadge('record', r.status)],
      [r.out_bill_no, () => mono(r.out_bill_no)],
      [r.openid, () => mono(r.openid)],
      [r.transfer_amount, () => yuan(r.transfer_amount), 'num'],
      [r.attempts, () => String(r.attempts), 'num'],
      [r.created_at, () => timeEl(r.created_at), 'nowrap'],
    ], (id) => { location.hash = `#/transfers/${enc(id)}`; });
  }

  function renderPager(m) {
    prev.disabled = !m.previous;
    next.disabled = !m.next;
    setText(pagerInfo, m.total_count === 0
      ? t('pager.none')
      : t('pager.info', { from: m.offset + 1, to: Math.min(m.offset + m.limit, m.total_count), total: m.total_count }));
  }

  prev.addEventListener('click', () => {
    if (!meta) return;
    state.transferOffset = Math.max(0, meta.offset - meta.limit);
    loadTable();
  });
  next.addEventListener('click', () => {
    if (!meta) return;
    state.transferOffset = meta.offset + meta.limit;
    loadTable();
  });

  function filtersForm() {
    const f = state.transferFilters;
    const input = (id, key, type) => h('input', {
      id, type: type || 'text', value: f[key], autocomplete: 'off',
      oninput: (e) => { f[key] = e.target.value; },
    });
    const form = h('form', { class: 'card', id: 'transfer-filters', novalidate: true },
      h('h2', null, t('filters.title')),
      h('div', { class: 'form-grid' },
        field('f.status', h('select', { id: 'transfers-filter-status', onchange: (e) => { f.status = e.target.value; } },
          h('option', { value: '' }, t('f.all')),
          TRANSFER_STATUSES.map((st) => h('option', { value: st, selected: st === f.status }, label('st.record', st))))),
        state.merchants.length > 1
          ? field('f.merchant', merchantSelect('transfers-filter-merchant', f.merchant, true, (v) => { f.merchant = v; }))
          : null,
        field('f.openid', input('transfers-filter-openid', 'openid')),
        field('f.outBillNo', input('transfers-filter-billno', 'out_bill_no')),
        field('f.campaign', input('transfers-filter-campaign', 'campaign_id')),
        field('f.from', input('transfers-filter-from', 'from', 'date')),
        field('f.to', input('transfers-filter-to', 'to', 'date'))),
      h('div', { class: 'form-actions' },
        h('button', { type: 'submit', class: 'btn btn-primary', id: 'transfers-filter-apply' }, t('f.apply')),
        h('button', {
          type: 'button', class: 'btn', id: 'transfers-filter-reset',
          onclick: () => {
            state.transferFilters = emptyTransferFilters();
            state.transferApplied = emptyTransferFilters();
            state.transferOffset = 0;
            form.replaceWith(filtersForm());
            loadTable();
          },
        }, t('f.reset'))));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      state.transferApplied = { ...state.transferFilters };
      state.transferOffset = 0;
      loadTable();
    });
    return form;
  }

  tbody.append(emptyRow(COLUMNS.length, t('loading')));
  await loadTable();
  ctx.poll(3000, loadTable);
}
