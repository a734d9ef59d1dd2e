// Overview: today's and this month's figures, the chart, and the merchants.

import { label, t } from '../i18n.js';
import { state } from '../state.js';
import { api, enc, errorText, loadMerchants } from '../lib/api.js';
import { add, byId, fill, h, s, setText, showAlert, token } from '../lib/dom.js';
import { pad2, yuan } from '../lib/format.js';
import {
  dash,
  emptyRow,
  mono,
  PAYOUT_STATUSES,
  statusBadge,
  statusOrder,
  tableWrap,
  thead,
  timeEl,
} from '../lib/ui.js';

export async function viewOverview(ctx) {
  const banner = h('div', { id: 'balance-warning', class: 'alert alert-warning banner', role: 'alert', hidden: true });
  const statsError = h('p', { id: 'stats-error', class: 'alert alert-error', hidden: true });
  const periods = h('div', { class: 'grid-2', id: 'stats-periods' });
  const chart = h('div', { class: 'chart', id: 'chart' });
  const chartSum = h('p', { class: 'hint', id: 'chart-sum' });
  const merchantsBox = h('div', { id: 'merchants' }, h('p', { class: 'muted' }, t('loading')));
  const merchantsError = h('p', { class: 'alert alert-error', hidden: true });

  const bucketButton = (bucket, key) => h('button', {
    type: 'button', class: 'btn btn-small', id: `bucket-${bucket}`,
    'aria-pressed': String(state.bucket === bucket),
    onclick: () => {
      if (state.bucket === bucket) return;
      state.bucket = bucket;
      for (const b of ['hour', 'day']) byId(`bucket-${b}`).setAttribute('aria-pressed', String(b === bucket));
      loadStats();
    },
  }, t(key));

  add(ctx.el,
    h('div', { class: 'page-head' }, h('h1', null, t('ov.title')),
      h('span', { class: 'muted small' }, t('autoRefresh', { s: 10 }))),
    banner,
    statsError,
    periods,
    h('section', { class: 'card' },
      h('div', { class: 'card-head' },
        h('h2', null, t('ov.chart')),
        h('div', { class: 'segmented', role: 'group' },
          bucketButton('hour', 'ov.hour'), bucketButton('day', 'ov.day'))),
      chart,
      chartSum,
      h('p', { class: 'hint' }, t('ov.chartNote'))),
    h('section', { class: 'card' },
      h('h2', null, t('ov.merchants')),
      merchantsError,
      merchantsBox));

  let stats = null;
  let statsSeq = 0;

  async function loadStats() {
    const seq = ++statsSeq;
    try {
      const data = await api('/v1/stats', { query: { bucket: state.bucket } });
      if (!ctx.alive() || seq !== statsSeq) return;
      stats = data;
      showAlert(statsError, '');
      renderPeriods(periods, data);
      drawChart(chart, chartSum, data);
    } catch (err) {
      if (err.unauthorized || !ctx.alive() || seq !== statsSeq) return;
      showAlert(statsError, t('ov.statsError', { msg: errorText(err) }));
    }
  }

  async function refreshMerchants() {
    try {
      const list = await loadMerchants();
      if (!ctx.alive()) return;
      showAlert(merchantsError, '');
      renderMerchants(merchantsBox, banner, list, ctx);
    } catch (err) {
      if (err.unauthorized || !ctx.alive()) return;
      showAlert(merchantsError, errorText(err));
    }
  }

  // Redraw the chart to the new width (text keeps its size that way).
  let resizeTimer = 0;
  const onResize = () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (stats && ctx.alive()) drawChart(chart, chartSum, stats); }, 150);
  };
  window.addEventListener('resize', onResize);
  ctx.onLeave(() => { window.removeEventListener('resize', onResize); clearTimeout(resizeTimer); });

  await Promise.all([loadStats(), refreshMerchants()]);
  ctx.poll(10000, () => Promise.all([loadStats(), refreshMerchants()]));
}

// The rails, always both shown (a rail without records shows 0).
const RAILS = ['redpack', 'transfer'];

/** A period's count and amount by rail (`by_rail`), and an unknown rail after. */
function railsTable(id, byRail) {
  const rails = [...RAILS, ...Object.keys(byRail).filter((k) => !RAILS.includes(k)).sort()];
  return tableWrap(h('table', { id },
    thead(['col.rail', ['col.count', 'num'], ['col.amount', 'num']]),
    h('tbody', null, rails.map((k) => {
      const r = byRail[k] || { count: 0, amount: 0 };
      return h('tr', { 'data-rail': k },
        h('td', null, label('rail', k)),
        h('td', { class: 'num', 'data-field': 'count' }, r.count),
        h('td', { class: 'num', 'data-field': 'amount' }, yuan(r.amount)));
    }))));
}

function renderPeriods(box, data) {
  const period = (id, titleKey, p) => {
    p = p || { count: 0, amount: 0, by_status: {}, by_rail: {} };
    const byStatus = p.by_status || {};
    const keys = statusOrder(Object.keys(byStatus), PAYOUT_STATUSES);
    return h('section', { class: 'card', id },
      h('div', { class: 'card-head' },
        h('h2', null, t(titleKey)),
        data.timezone ? h('span', { class: 'muted small' }, t('ov.tz', { tz: data.timezone })) : null),
      h('div', { class: 'totals' },
        h('span', { class: 'big', id: `${id}-amount` }, yuan(p.amount)),
        h('span', { class: 'muted', id: `${id}-count` }, t('ov.records', { count: p.count }))),
      h('h3', null, t('ov.byRail')),
      railsTable(`${id}-rails`, p.by_rail || {}),
      h('h3', null, t('col.byStatus')),
      tableWrap(h('table', { id: `${id}-table` },
        thead(['col.status', ['col.count', 'num'], ['col.amount', 'num']]),
        h('tbody', null,
          keys.length === 0
            ? emptyRow(3, t('empty'))
            : keys.map((k) => h('tr', { 'data-status': k },
              h('td', null, statusBadge('record', k)),
              h('td', { class: 'num' }, byStatus[k].count),
              h('td', { class: 'num' }, yuan(byStatus[k].amount))))),
        h('tfoot', null, h('tr', null,
          h('th', { scope: 'row' }, t('ov.total')),
          h('td', { class: 'num' }, p.count),
          h('td', { class: 'num' }, yuan(p.amount)))))));
  };
  fill(box, period('stats-today', 'ov.today', data.today), period('stats-month', 'ov.month', data.month));
}

/** A bucket's label: hours in local time, days as dates of the stats' time zone. */
function bucketLabel(iso, bucket, tz, long) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  if (bucket === 'day') {
    let date;
    try {
      date = new Intl.DateTimeFormat('en-CA', { timeZone: tz || undefined, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
    } catch (_) {
      date = `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
    }
    return long ? date : date.slice(5);
  }
  const hour = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return long ? `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${hour}` : hour;
}

/** Draws the series as an SVG bar chart sized to its container. */
function drawChart(box, sumEl, data) {
  const series = Array.isArray(data.series) ? data.series : [];
  const bucket = data.bucket || state.bucket;
  const width = Math.max(280, Math.floor(box.clientWidth || 640));
  const height = 220;
  const m = { top: 12, right: 8, bottom: 26, left: 76 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const max = series.reduce((acc, p) => Math.max(acc, Number(p.amount) || 0), 0);
  let totalCount = 0;
  let totalAmount = 0;
  for (const p of series) {
    totalCount += Number(p.count) || 0;
    totalAmount += Number(p.amount) || 0;
  }

  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
    'aria-label': t('ov.chartLabel'), id: 'chart-svg', 'data-bucket': bucket,
  });
  // Grid lines and the amount axis (at 0, half and the maximum).
  for (const f of [0, 0.5, 1]) {
    const y = m.top + plotH - f * plotH;
    svg.append(s('line', { class: f === 0 ? 'axis' : 'grid', x1: m.left, x2: width - m.right, y1: y, y2: y }));
    if (max > 0 || f === 0) {
      svg.append(s('text', { x: m.left - 6, y: y + 4, 'text-anchor': 'end' }, yuan(Math.round(max * f))));
    }
  }
  if (series.length === 0 || max === 0) {
    svg.append(s('text', { class: 'empty-text', x: m.left + plotW / 2, y: m.top + plotH / 2, 'text-anchor': 'middle' }, t('ov.chartEmpty')));
  }
  if (series.length > 0) {
    const slot = plotW / series.length;
    const barW = Math.max(1, slot * 0.72);
    // Label every n-th bar, n a round number of hours or days, so that
    // labels stay at least about 56 px apart.
    const need = Math.max(1, Math.ceil(56 / slot));
    const steps = bucket === 'day' ? [1, 2, 3, 5, 7, 10, 15, 30] : [1, 2, 3, 4, 6, 12, 24, 48];
    const every = steps.find((n) => n >= need) || need;
    const labelled = (p, i) => {
      if (bucket === 'day') return (series.length - 1 - i) % every === 0; // the latest day is labelled
      const d = new Date(p.start);
      return Number.isNaN(d.getTime()) ? i % every === 0 : d.getHours() % every === 0;
    };
    series.forEach((p, i) => {
      const amount = Number(p.amount) || 0;
      const x = m.left + i * slot + (slot - barW) / 2;
      if (max > 0 && amount > 0) {
        const barH = Math.max(1, (amount / max) * plotH); // pixels, not money
        svg.append(s('rect', {
          class: 'bar', x: x.toFixed(1), y: (m.top + plotH - barH).toFixed(1),
          width: barW.toFixed(1), height: barH.toFixed(1), 'data-start': p.start,
        }, s('title', null, `${bucketLabel(p.start, bucket, data.timezone, true)} · ${yuan(amount)} · ${t('ov.records', { count: p.count })}`)));
      }
      if (labelled(p, i)) {
        svg.append(s('text', { x: (m.left + i * slot + slot / 2).toFixed(1), y: height - 8, 'text-anchor': 'middle' },
          bucketLabel(p.start, bucket, data.timezone, false)));
      }
    });
  }
  fill(box, svg);
  setText(sumEl, t('ov.chartSum', { count: totalCount, amount: yuan(totalAmount) }));
}

function renderMerchants(box, banner, list, ctx) {
  const lowBalance = list.filter((mch) => mch.paused && mch.pause_reason === 'insufficient_balance');
  showAlert(banner, lowBalance.length ? t('ov.balanceWarning', { names: lowBalance.map((mch) => mch.name).join(', ') }) : '');
  if (list.length === 0) {
    fill(box, h('p', { class: 'muted' }, t('ov.noMerchants')));
    return;
  }
  const resume = async (button, name, rowError) => {
    button.disabled = true;
    setText(button, t('m.resuming'));
    try {
      const updated = await api(`/v1/merchants/${enc(name)}/resume`, { method: 'POST' });
      state.merchants = updated;
      if (ctx.alive()) renderMerchants(box, banner, updated, ctx);
    } catch (err) {
      if (err.unauthorized || !ctx.alive()) return;
      button.disabled = false;
      setText(button, t('m.resume'));
      showAlert(rowError, errorText(err));
    }
  };
  fill(box, tableWrap(h('table', { id: 'merchants-table' },
    thead(['col.name', 'col.mchId', 'col.state', 'col.reason', 'col.errCode', 'col.message', 'col.since', 'col.actions']),
    h('tbody', null, list.map((mch) => {
      const rowError = h('div', { class: 'field-error', hidden: true });
      return h('tr', { 'data-merchant': mch.name, class: mch.paused ? 'paused' : null },
        h('td', null, h('strong', null, mch.name)),
        h('td', null, mono(mch.mch_id)),
        h('td', null, h('span', { class: `status status-${mch.paused ? 'paused' : 'active'}` }, t(mch.paused ? 'm.paused' : 'm.active'))),
        h('td', null, mch.paused ? label('reason', mch.pause_reason) : dash()),
        h('td', null, mono(mch.pause_err_code)),
        h('td', { class: 'wrap' }, mch.pause_message || dash()),
        h('td', null, mch.paused ? timeEl(mch.paused_at) : dash()),
        h('td', null, mch.paused
          ? [h('button', {
            type: 'button', class: 'btn btn-primary btn-small resume-merchant', 'data-merchant': mch.name,
            id: `resume-${token(mch.name)}`,
            onclick: (e) => resume(e.currentTarget, mch.name, rowError),
          }, t('m.resume')), rowError]
          : dash()));
    })))));
}
