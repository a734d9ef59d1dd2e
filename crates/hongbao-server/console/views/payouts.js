// Payouts: the send form, the filters and the table.

import { label, t } from '../i18n.js';
import { emptyPayoutFilters, state } from '../state.js';
import { api, enc, errorText, loadMerchants, PAGE_SIZE, uuid } from '../lib/api.js';
import { add, fill, h, setText, showAlert } from '../lib/dom.js';
import { localDateToRfc3339, localTime, parseYuan, yuan } from '../lib/format.js';
import {
  dash,
  emptyRow,
  field,
  merchantSelect,
  mono,
  RECORD_STATUSES,
  statusBadge,
  syncRows,
  tableWrap,
  thead,
  timeEl,
} from '../lib/ui.js';

export async function viewPayouts(ctx) {
  // Filters given in the link (e.g. from a campaign) replace the current
  // ones; the hash is then cleaned so a reload does not re-apply them.
  const linkFilters = ['status', 'merchant', 're_openid', 'mch_billno', 'campaign_id'];
  if (linkFilters.some((k) => ctx.params.has(k))) {
    state.payoutFilters = emptyPayoutFilters();
    for (const k of linkFilters) state.payoutFilters[k] = ctx.params.get(k) || '';
    state.payoutApplied = { ...state.payoutFilters };
    state.payoutOffset = 0;
    history.replaceState(null, '', '#/payouts');
  }
  if (state.merchants.length === 0) {
    try { await loadMerchants(); } catch (err) { if (err.unauthorized) return; }
    if (!ctx.alive()) return;
  }

  const tableError = h('p', { class: 'alert alert-error', id: 'payouts-error', hidden: true });
  const updated = h('span', { class: 'muted small', id: 'payouts-updated' });
  const tbody = h('tbody');
  const pagerInfo = h('span', { class: 'muted small', id: 'payouts-page-info' });
  const prev = h('button', { type: 'button', class: 'btn btn-small', id: 'payouts-prev', disabled: true }, t('pager.prev'));
  const next = h('button', { type: 'button', class: 'btn btn-small', id: 'payouts-next', disabled: true }, t('pager.next'));

  add(ctx.el,
    h('div', { class: 'page-head' }, h('h1', null, t('po.title'))),
    sendForm(),
    filtersForm(),
    h('section', { class: 'card' },
      h('div', { class: 'card-head' },
        h('h2', null, t('po.list')),
        h('span', { class: 'muted small' }, t('autoRefresh', { s: 3 }), ' · ', updated)),
      tableError,
      tableWrap(h('table', { id: 'payouts-table' },
        thead(['col.created', 'col.merchant', 'col.openid', ['col.amount', 'num'], 'col.status', 'col.billno', 'col.error']),
        tbody)),
      h('div', { class: 'pager' }, pagerInfo, h('div', { class: 'pager-buttons' }, prev, next))));

  let seq = 0;
  let meta = null;

  async function loadTable() {
    const mySeq = ++seq;
    const f = state.payoutApplied;
    const query = {
      status: f.status,
      merchant: f.merchant,
      re_openid: f.re_openid.trim(),
      mch_billno: f.mch_billno.trim(),
      campaign_id: f.campaign_id.trim(),
      created_from: f.from ? localDateToRfc3339(f.from, 0) : '',
      // "to" is inclusive in the form; the API's created_to is exclusive.
      created_to: f.to ? localDateToRfc3339(f.to, 1) : '',
      offset: state.payoutOffset,
      limit: PAGE_SIZE,
    };
    try {
      const data = await api('/v1/redpacks', { query });
      if (!ctx.alive() || mySeq !== seq) return;
      // A page past the end (records went away, or filters narrowed): go back.
      if (data.objects.length === 0 && data.meta.total_count > 0 && state.payoutOffset > 0) {
        state.payoutOffset = Math.max(0, data.meta.total_count - PAGE_SIZE);
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
      fill(tbody, emptyRow(7, t('empty')));
      return;
    }
    syncRows(tbody, records, (r) => [
      [r.created_at, () => h('a', { href: `#/payouts/${enc(r.id)}`, class: 'detail-link' }, timeEl(r.created_at)), 'nowrap'],
      [r.merchant, () => r.merchant],
      [r.re_openid, () => mono(r.re_openid)],
      [r.total_amount, () => yuan(r.total_amount), 'num'],
      [r.status, () => statusBadge('record', r.status)],
      [r.mch_billno, () => mono(r.mch_billno)],
      [[r.err_code, r.message, r.zh_message], () => recordError(r), 'wrap'],
    ], (id) => { location.hash = `#/payouts/${enc(id)}`; });
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
    state.payoutOffset = Math.max(0, meta.offset - meta.limit);
    loadTable();
  });
  next.addEventListener('click', () => {
    if (!meta) return;
    state.payoutOffset = meta.offset + meta.limit;
    loadTable();
  });

  function filtersForm() {
    const f = state.payoutFilters;
    const input = (id, key, type) => h('input', {
      id, type: type || 'text', value: f[key], autocomplete: 'off',
      oninput: (e) => { f[key] = e.target.value; },
    });
    const form = h('form', { class: 'card', id: 'payout-filters', novalidate: true },
      h('h2', null, t('filters.title')),
      h('div', { class: 'form-grid' },
        field('f.status', h('select', { id: 'filter-status', onchange: (e) => { f.status = e.target.value; } },
          h('option', { value: '' }, t('f.all')),
          RECORD_STATUSES.map((st) => h('option', { value: st, selected: st === f.status }, label('st.record', st))))),
        state.merchants.length > 1
          ? field('f.merchant', merchantSelect('filter-merchant', f.merchant, true, (v) => { f.merchant = v; }))
          : null,
        field('f.openid', input('filter-openid', 're_openid')),
        field('f.billno', input('filter-billno', 'mch_billno')),
        field('f.campaign', input('filter-campaign', 'campaign_id')),
        field('f.from', input('filter-from', 'from', 'date')),
        field('f.to', input('filter-to', 'to', 'date'))),
      h('div', { class: 'form-actions' },
        h('button', { type: 'submit', class: 'btn btn-primary', id: 'filter-apply' }, t('f.apply')),
        h('button', {
          type: 'button', class: 'btn', id: 'filter-reset',
          onclick: () => {
            state.payoutFilters = emptyPayoutFilters();
            state.payoutApplied = emptyPayoutFilters();
            state.payoutOffset = 0;
            form.replaceWith(filtersForm());
            loadTable();
          },
        }, t('f.reset'))));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      state.payoutApplied = { ...state.payoutFilters };
      state.payoutOffset = 0;
      loadTable();
    });
    return form;
  }

  tbody.append(emptyRow(7, t('loading')));
  await loadTable();
  ctx.poll(3000, loadTable);
}

/** A record's failure: err_code and the message in the current language. */
function recordError(r) {
  if (!r.err_code && !r.message) return dash();
  const msg = state.lang === 'zh' ? r.zh_message || r.message : r.message || r.zh_message;
  return [r.err_code ? h('span', { class: 'mono' }, r.err_code) : null, r.err_code && msg ? ' ' : null, msg || null];
}

/** The send form: a `normal` packet of one, with an Idempotency-Key. */
function sendForm() {
  const d = state.send;
  const control = (id, key, attrs) => h('input', {
    id, type: 'text', value: d[key], autocomplete: 'off', ...attrs,
    oninput: (e) => {
      d[key] = e.target.value;
      state.sendKey = null; // another body: another payout, another key
      e.target.removeAttribute('aria-invalid');
    },
  });
  const withError = (name, labelKey, input) => {
    input.setAttribute('aria-describedby', 'send-error');
    return field(labelKey, input);
  };
  const inputs = {
    re_openid: control('send-openid', 'openid', { maxlength: 64, spellcheck: 'false' }),
    total_amount: control('send-amount', 'amount', { inputmode: 'decimal', placeholder: '1.88' }),
    wishing: control('send-wishing', 'wishing', { placeholder: t('send.default') }),
    act_name: control('send-act-name', 'act_name', { placeholder: t('send.default') }),
    remark: control('send-remark', 'remark', { placeholder: t('send.default') }),
  };
  let merchantField = null;
  if (state.merchants.length > 1) {
    if (!state.merchants.some((mch) => mch.name === d.merchant)) d.merchant = state.merchants[0].name;
    inputs.merchant = merchantSelect('send-merchant', d.merchant, false, (v) => { d.merchant = v; state.sendKey = null; });
    merchantField = withError('merchant', 'send.merchant', inputs.merchant);
  }
  const error = h('div', { id: 'send-error', class: 'alert alert-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'send-submit' }, t('send.submit'));

  const clearErrors = () => {
    showAlert(error, '');
    for (const input of Object.values(inputs)) input.removeAttribute('aria-invalid');
  };
  // The message goes to #send-error; the field at fault is marked too.
  const fail = (fieldName, text) => {
    showAlert(error, text);
    if (fieldName && inputs[fieldName]) {
      inputs[fieldName].setAttribute('aria-invalid', 'true');
      inputs[fieldName].focus();
    }
  };

  const form = h('form', { class: 'card', id: 'send-form', novalidate: true },
    h('h2', null, t('send.title')),
    h('div', { class: 'form-grid' },
      merchantField,
      withError('re_openid', 'send.openid', inputs.re_openid),
      withError('total_amount', 'send.amount', inputs.total_amount),
      withError('wishing', 'send.wishing', inputs.wishing),
      withError('act_name', 'send.actName', inputs.act_name),
      withError('remark', 'send.remark', inputs.remark)),
    error,
    h('div', { class: 'form-actions' }, submit),
    h('p', { class: 'hint' }, t('send.hint')));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (submit.disabled) return;
    clearErrors();
    const openid = d.openid.trim();
    if (!openid) { fail('re_openid', t('send.needOpenid')); return; }
    const fen = parseYuan(d.amount);
    if (fen === null || fen <= 0) { fail('total_amount', t('send.badAmount')); return; }
    const body = { type: 'normal', re_openid: openid, total_amount: fen, total_num: 1 };
    // Empty texts are left out: the merchant's configured defaults apply.
    for (const k of ['wishing', 'act_name', 'remark']) if (d[k].trim()) body[k] = d[k].trim();
    if (inputs.merchant && d.merchant) body.merchant = d.merchant;
    // The key is kept until the body changes or the payout is stored, so
    // a resubmission after a lost answer answers the same record.
    if (!state.sendKey) state.sendKey = uuid();
    submit.disabled = true;
    setText(submit, t('send.sending'));
    try {
      const record = await api('/v1/redpacks', {
        method: 'POST', json: body, headers: { 'Idempotency-Key': state.sendKey },
      });
      state.sendKey = null;
      d.openid = '';
      d.amount = '';
      location.hash = `#/payouts/${enc(record.id)}`;
    } catch (err) {
      if (err.unauthorized) return;
      submit.disabled = false;
      setText(submit, t('send.submit'));
      const apiField = err.error && err.error.field;
      fail(apiField && inputs[apiField] ? apiField : null, errorText(err));
    }
  });
  return form;
}
