// Campaign detail: progress, totals, pause and resume, the report.

import { t } from '../i18n.js';
import { api, enc, errorText } from '../lib/api.js';
import { add, fill, h, setText, showAlert } from '../lib/dom.js';
import { yuan } from '../lib/format.js';
import {
  emptyRow,
  mono,
  RECORD_STATUSES,
  statusBadge,
  statusOrder,
  tableWrap,
  thead,
  timeEl,
  updateBadge,
} from '../lib/ui.js';
import { progressBar } from './campaigns.js';

export async function viewCampaign(ctx, id) {
  const statusEl = statusBadge('campaign', null, 'campaign-status');
  const title = h('span', { id: 'campaign-name-title' }, id);
  const polling = h('span', { class: 'muted small', id: 'campaign-polling', hidden: true }, t('c.polling'));
  const error = h('p', { class: 'alert alert-error', id: 'campaign-error', hidden: true });
  const merchantPaused = h('p', { class: 'alert alert-warning', id: 'campaign-merchant-paused', hidden: true });
  const operatorPaused = h('p', { class: 'alert alert-info', id: 'campaign-paused-note', hidden: true });
  const pauseButton = h('button', { type: 'button', class: 'btn', id: 'campaign-pause', disabled: true }, t('c.pause'));
  const resumeButton = h('button', { type: 'button', class: 'btn btn-primary', id: 'campaign-resume', disabled: true }, t('c.resume'));
  const reportButton = h('button', { type: 'button', class: 'btn', id: 'campaign-report' }, t('c.report'));
  const progress = h('div', { id: 'campaign-progress' });
  const kpis = h('div', { class: 'kpis', id: 'campaign-kpis' });
  const byStatus = h('tbody');
  const errCodes = h('div', { id: 'campaign-err-codes' });
  const info = h('dl', { class: 'fields', id: 'campaign-info' });

  add(ctx.el,
    h('a', { class: 'back', href: '#/campaigns' }, t('c.back')),
    h('div', { class: 'page-head' },
      h('h1', null, title, ' ', statusEl),
      polling),
    error,
    merchantPaused,
    operatorPaused,
    h('section', { class: 'card' },
      progress,
      kpis,
      h('div', { class: 'form-actions' },
        pauseButton, resumeButton, reportButton,
        h('a', { class: 'btn btn-ghost', id: 'campaign-payouts', href: `#/payouts?campaign_id=${enc(id)}` }, t('c.payouts')))),
    h('div', { class: 'grid-2' },
      h('section', { class: 'card' },
        h('h2', null, t('c.byStatus')),
        tableWrap(h('table', { id: 'campaign-by-status' },
          thead(['col.status', ['col.count', 'num'], ['col.amount', 'num']]), byStatus))),
      h('section', { class: 'card' }, h('h2', null, t('c.errCodes')), errCodes)),
    h('section', { class: 'card' }, info));

  let campaign = null;

  function show(c) {
    campaign = c;
    setText(title, c.name);
    document.title = `${c.name} · ${t('app.title')}`;
    updateBadge(statusEl, 'campaign', c.status);
    showAlert(merchantPaused, c.merchant_paused ? t('c.merchantPaused', { msg: c.merchant_paused }) : '');
    showAlert(operatorPaused, c.paused && c.status !== 'done' ? t('c.operatorPaused') : '');
    pauseButton.disabled = c.paused || c.status === 'done';
    resumeButton.disabled = !(c.paused || c.merchant_paused || c.status === 'paused');
    fill(progress, progressBar(c, true));
    const kpi = (key, value, sub, kid) => h('div', { class: 'kpi', id: kid },
      h('div', { class: 'kpi-label' }, t(key)),
      h('div', { class: 'kpi-value' }, value),
      sub ? h('div', { class: 'kpi-sub' }, sub) : null);
    fill(kpis,
      kpi('c.rows', String(c.rows), null, 'kpi-rows'),
      kpi('c.imported', String(c.imported), null, 'kpi-imported'),
      kpi('c.totalAmount', yuan(c.total_amount), null, 'kpi-total'),
      kpi('c.paid', String(c.paid_count), yuan(c.paid_amount), 'kpi-paid'),
      kpi('c.failed', String(c.failed_count), yuan(c.failed_amount), 'kpi-failed'),
      kpi('c.open', String(c.open_count), yuan(c.open_amount), 'kpi-open'));
    const keys = statusOrder(Object.keys(c.counts || {}), RECORD_STATUSES);
    fill(byStatus, ...(keys.length ? keys.map((k) => h('tr', { 'data-status': k },
      h('td', null, statusBadge('record', k)),
      h('td', { class: 'num' }, c.counts[k]),
      h('td', { class: 'num' }, yuan((c.amounts || {})[k] || 0)))) : [emptyRow(3, t('empty'))]));
    const codes = Object.entries(c.err_codes || {}).sort((a, b) => b[1] - a[1]);
    fill(errCodes, codes.length
      ? tableWrap(h('table', null, thead(['col.errCode', ['col.count', 'num']]),
        h('tbody', null, codes.map(([code, n]) => h('tr', null, h('td', null, mono(code)), h('td', { class: 'num' }, n))))))
      : h('p', { class: 'muted' }, t('c.noFailures')));
    const row = (key, content) => [h('dt', null, t(key)), h('dd', null, content)];
    fill(info,
      ...row('c.id', mono(c.id)),
      ...row('col.merchant', c.merchant),
      ...row('c.sha', mono(c.file_sha256)),
      ...row('fld.created_at', timeEl(c.created_at)),
      ...row('fld.updated_at', timeEl(c.updated_at)));
  }

  async function load() {
    try {
      const c = await api(`/v1/campaigns/${enc(id)}`);
      if (!ctx.alive()) return;
      showAlert(error, '');
      show(c);
    } catch (err) {
      if (err.unauthorized || !ctx.alive()) return;
      showAlert(error, errorText(err));
    }
  }

  let stopPolling = null;
  function followUntilDone() {
    if (campaign && campaign.status !== 'done' && !stopPolling) {
      polling.hidden = false;
      stopPolling = ctx.poll(2000, async () => {
        await load();
        if (!campaign || campaign.status !== 'done') return true;
        polling.hidden = true;
        stopPolling = null;
        return false;
      });
    }
  }

  const action = (button, path) => async () => {
    button.disabled = true;
    showAlert(error, '');
    try {
      const c = await api(`/v1/campaigns/${enc(id)}/${path}`, { method: 'POST' });
      if (!ctx.alive()) return;
      show(c);
      followUntilDone();
    } catch (err) {
      if (err.unauthorized || !ctx.alive()) return;
      showAlert(error, errorText(err));
      if (campaign) show(campaign);
    }
  };
  pauseButton.addEventListener('click', action(pauseButton, 'pause'));
  resumeButton.addEventListener('click', action(resumeButton, 'resume'));

  // The report needs the Authorization header, so it cannot be a plain
  // link: fetch it, then hand the browser a Blob URL to save.
  reportButton.addEventListener('click', async () => {
    reportButton.disabled = true;
    showAlert(error, '');
    try {
      const res = await api(`/v1/campaigns/${enc(id)}/report.csv`, { raw: true, headers: { Accept: 'text/csv' } });
      const blob = await res.blob();
      const fromHeader = /filename="?([^";]+)"?/i.exec(res.headers.get('Content-Disposition') || '');
      const name = fromHeader ? fromHeader[1] : `${campaign ? campaign.name : id}.csv`;
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      if (err.unauthorized || !ctx.alive()) return;
      showAlert(error, errorText(err));
    } finally {
      if (ctx.alive()) reportButton.disabled = false;
    }
  });

  byStatus.append(emptyRow(3, t('loading')));
  await load();
  followUntilDone();
}
