// Campaigns: the CSV upload and the list.

import { t } from '../i18n.js';
import { state } from '../state.js';
import { api, enc, errorText, loadMerchants } from '../lib/api.js';
import { add, fill, h, setText, showAlert } from '../lib/dom.js';
import { fenToYuanString, parseYuan, yuan } from '../lib/format.js';
import {
  dash,
  emptyRow,
  field,
  merchantSelect,
  mono,
  RECORD_STATUSES,
  statusBadge,
  statusOrder,
  syncRows,
  tableWrap,
  thead,
  timeEl,
} from '../lib/ui.js';

export function progressBar(c, large) {
  const total = Number(c.rows) || 0;
  const paid = Number(c.paid_count) || 0;
  const failed = Number(c.failed_count) || 0;
  const pct = (n) => (total > 0 ? `${Math.min(100, (n * 100) / total).toFixed(2)}%` : '0%');
  const paidBar = h('div', { class: 'progress-paid' });
  const failedBar = h('div', { class: 'progress-failed' });
  paidBar.style.width = pct(paid); // CSSOM: allowed by the page's CSP
  failedBar.style.width = pct(failed);
  return h('div', { class: 'progress-wrap' },
    h('div', {
      class: `progress${large ? ' progress-large' : ''}`, role: 'progressbar',
      'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': paid,
    }, paidBar, failedBar),
    h('div', { class: 'progress-label' },
      failed ? t('c.progressFailed', { paid, total, failed }) : t('c.progress', { paid, total })));
}

function statusChips(counts, amounts) {
  const keys = statusOrder(Object.keys(counts || {}), RECORD_STATUSES);
  if (!keys.length) return dash();
  return h('div', { class: 'chips' }, keys.map((k) => h('span', { class: 'chip' },
    statusBadge('record', k), ' ', counts[k], ' · ', yuan((amounts || {})[k] || 0))));
}

export async function viewCampaigns(ctx) {
  if (state.merchants.length === 0) {
    try { await loadMerchants(); } catch (err) { if (err.unauthorized) return; }
    if (!ctx.alive()) return;
  }
  const listError = h('p', { class: 'alert alert-error', hidden: true, id: 'campaigns-error' });
  const tbody = h('tbody', null, emptyRow(10, t('loading')));
  add(ctx.el,
    h('div', { class: 'page-head' }, h('h1', null, t('c.title'))),
    campaignForm(ctx),
    h('section', { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', null, t('c.list')), h('span', { class: 'muted small' }, t('autoRefresh', { s: 5 }))),
      listError,
      tableWrap(h('table', { id: 'campaigns-table' },
        thead(['col.name', 'col.status', 'col.progress', ['col.rows', 'num'], ['col.total', 'num'],
          ['col.paid', 'num'], ['col.failed', 'num'], ['col.open', 'num'], 'col.byStatus', 'col.created']),
        tbody))));

  async function loadList() {
    try {
      const list = await api('/v1/campaigns');
      if (!ctx.alive()) return;
      showAlert(listError, '');
      if (!list.length) {
        fill(tbody, emptyRow(10, t('c.none')));
        return;
      }
      syncRows(tbody, list, (c) => [
        [[c.name, c.id], () => h('a', { href: `#/campaigns/${enc(c.id)}` }, c.name)],
        [c.status, () => statusBadge('campaign', c.status)],
        [[c.rows, c.paid_count, c.failed_count], () => progressBar(c, false)],
        [c.rows, () => c.rows, 'num'],
        [c.total_amount, () => yuan(c.total_amount), 'num'],
        [[c.paid_count, c.paid_amount], () => [String(c.paid_count), h('div', { class: 'muted small' }, yuan(c.paid_amount))], 'num'],
        [[c.failed_count, c.failed_amount], () => [String(c.failed_count), h('div', { class: 'muted small' }, yuan(c.failed_amount))], 'num'],
        [[c.open_count, c.open_amount], () => [String(c.open_count), h('div', { class: 'muted small' }, yuan(c.open_amount))], 'num'],
        [[c.counts, c.amounts], () => statusChips(c.counts, c.amounts)],
        [c.created_at, () => timeEl(c.created_at)],
      ], (cid) => { location.hash = `#/campaigns/${enc(cid)}`; });
    } catch (err) {
      if (err.unauthorized || !ctx.alive()) return;
      showAlert(listError, errorText(err));
    }
  }

  await loadList();
  ctx.poll(5000, loadList);
}

/** The CSV upload, posted as campaigns.rs expects: options in the query, the file as a text/csv body. */
function campaignForm(ctx) {
  const d = state.campaignDraft;
  const nameInput = h('input', { id: 'campaign-name', type: 'text', value: d.name, maxlength: 128, autocomplete: 'off', oninput: (e) => { d.name = e.target.value; } });
  const fileInput = h('input', { id: 'campaign-file', type: 'file', accept: '.csv,text/csv' });
  const amountInput = h('input', { id: 'campaign-amount', type: 'text', value: d.amount, inputmode: 'decimal', placeholder: '1.88', autocomplete: 'off', oninput: (e) => { d.amount = e.target.value; } });
  const repeatInput = h('input', { id: 'campaign-allow-repeat', type: 'checkbox', checked: d.allowRepeat, onchange: (e) => { d.allowRepeat = e.target.checked; } });
  const dryRunInput = h('input', { id: 'campaign-dry-run', type: 'checkbox', checked: d.dryRun, onchange: (e) => { d.dryRun = e.target.checked; } });
  const errors = h('div', { id: 'campaign-errors', role: 'alert', hidden: true });
  const result = h('p', { id: 'campaign-result', class: 'alert alert-ok', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'campaign-submit' }, t('c.submit'));
  let merchantField = null;
  if (state.merchants.length > 1) {
    if (!state.merchants.some((mch) => mch.name === d.merchant)) d.merchant = state.merchants[0].name;
    merchantField = field('c.merchant', merchantSelect('campaign-merchant', d.merchant, false, (v) => { d.merchant = v; }));
  }

  // A name from the file's, when none was typed.
  fileInput.addEventListener('change', () => {
    const file = fileInput.files && fileInput.files[0];
    if (file && !nameInput.value.trim()) {
      nameInput.value = file.name.replace(/\.csv$/i, '');
      d.name = nameInput.value;
    }
  });

  const showError = (text) => {
    fill(errors, h('p', { class: 'alert alert-error' }, text));
    errors.hidden = false;
  };

  const form = h('form', { class: 'card', id: 'campaign-form', novalidate: true },
    h('h2', null, t('c.upload')),
    h('div', { class: 'form-grid' },
      field('c.name', nameInput),
      merchantField,
      field('c.file', fileInput),
      field('c.amount', amountInput)),
    h('div', { class: 'form-actions' },
      h('div', { class: 'field field-check' }, repeatInput, h('label', { for: 'campaign-allow-repeat' }, t('c.allowRepeat'))),
      h('div', { class: 'field field-check' }, dryRunInput, h('label', { for: 'campaign-dry-run' }, t('c.dryRun')))),
    h('p', { class: 'hint' }, t('c.fileHint')),
    errors,
    result,
    h('div', { class: 'form-actions' }, submit));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (submit.disabled) return;
    errors.hidden = true;
    errors.replaceChildren();
    showAlert(result, '');
    const name = nameInput.value.trim();
    const file = fileInput.files && fileInput.files[0];
    if (!name) { showError(t('c.needName')); nameInput.focus(); return; }
    if (!file) { showError(t('c.needFile')); fileInput.focus(); return; }
    let amount = '';
    if (amountInput.value.trim()) {
      const fen = parseYuan(amountInput.value);
      if (fen === null || fen <= 0) { showError(t('c.badAmount')); amountInput.focus(); return; }
      amount = fenToYuanString(fen);
    }
    const query = {
      name,
      merchant: merchantField ? d.merchant : '',
      amount,
      allow_repeat: repeatInput.checked ? 'true' : '',
      dry_run: dryRunInput.checked ? 'true' : '',
    };
    submit.disabled = true;
    setText(submit, t('c.uploading'));
    try {
      const answer = await api('/v1/campaigns', {
        method: 'POST', query, body: file, headers: { 'Content-Type': 'text/csv; charset=utf-8' },
      });
      if (!ctx.alive()) return;
      if (answer && answer.id) {
        d.name = '';
        d.amount = '';
        location.hash = `#/campaigns/${enc(answer.id)}`;
        return;
      }
      // A dry run: the totals only.
      showAlert(result, t('c.dryRunOk', { rows: answer.rows, amount: yuan(answer.total_amount) }));
    } catch (err) {
      if (err.unauthorized || !ctx.alive()) return;
      if (err.body && Array.isArray(err.body.rows)) {
        renderBadRows(errors, err);
      } else {
        showError(errorText(err));
      }
    } finally {
      if (ctx.alive()) {
        submit.disabled = false;
        setText(submit, t('c.submit'));
      }
    }
  });
  return form;
}

/** The 422 invalid_rows report: every bad row with its line and reason. */
function renderBadRows(box, err) {
  const rows = err.body.rows;
  const total = Number(err.body.bad_rows) || rows.length;
  fill(box,
    h('p', { class: 'alert alert-error', id: 'campaign-errors-summary' }, errorText(err, true)),
    total > rows.length ? h('p', { class: 'hint' }, t('c.rowsShown', { shown: rows.length, total })) : null,
    tableWrap(h('table', { id: 'campaign-errors-table' },
      thead([['col.line', 'num'], 'col.field', 'col.reason']),
      h('tbody', null, rows.map((r) => h('tr', { class: 'bad-row', 'data-line': r.line, 'data-field': r.field || '' },
        h('td', { class: 'num' }, r.line),
        h('td', null, mono(r.field)),
        h('td', { class: 'wrap', title: rowText(state.lang === 'zh' ? r.message : r.zh_message) },
          rowText(state.lang === 'zh' ? r.zh_message || r.message : r.message || r.zh_message))))))));
  box.hidden = false;
}

/** A bad row's reason as this form says it: the API's option
 * `allow_repeat` is the form's checkbox here. */
function rowText(text) {
  return String(text || '')
    .replace('set allow_repeat', t('c.repeatHint', { option: t('c.allowRepeat') }))
    .replace('设置 allow_repeat', t('c.repeatHint', { option: t('c.allowRepeat') }));
}
