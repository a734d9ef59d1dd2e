// Prizes: the activities, and the prizes with their claim state.

import { label, t } from '../i18n.js';
import { state } from '../state.js';
import { api, enc, errorText, PAGE_SIZE } from '../lib/api.js';
import { add, fill, h, setText, showAlert } from '../lib/dom.js';
import { yuan } from '../lib/format.js';
import {
  dash,
  emptyRow,
  field,
  mono,
  PRIZE_STATUSES,
  statusBadge,
  statusOrder,
  syncRows,
  tableWrap,
  thead,
  timeEl,
} from '../lib/ui.js';

export async function viewPrizes(ctx) {
  const f = state.prizeFilters;
  const activitiesError = h('p', { class: 'alert alert-error', hidden: true });
  const activitiesBody = h('tbody', null, emptyRow(10, t('loading')));
  const prizesError = h('p', { class: 'alert alert-error', hidden: true, id: 'prizes-error' });
  const prizesBody = h('tbody', null, emptyRow(11, t('loading')));
  const activitySelect = h('select', { id: 'prize-activity', onchange: (e) => { f.activity = e.target.value; } },
    h('option', { value: '' }, t('p.allActivities')));
  const userInput = h('input', { id: 'prize-user', type: 'text', value: f.user, autocomplete: 'off', oninput: (e) => { f.user = e.target.value; } });
  const statusSelect = h('select', { id: 'prize-status', onchange: (e) => { f.status = e.target.value; } },
    h('option', { value: '' }, t('f.all')),
    PRIZE_STATUSES.map((st) => h('option', { value: st, selected: st === f.status }, label('st.prize', st))));
  const pagerInfo = h('span', { class: 'muted small', id: 'prizes-page-info' });
  const prev = h('button', { type: 'button', class: 'btn btn-small', id: 'prizes-prev', disabled: true }, t('pager.prev'));
  const next = h('button', { type: 'button', class: 'btn btn-small', id: 'prizes-next', disabled: true }, t('pager.next'));

  const filterForm = h('form', { id: 'prize-filters', novalidate: true },
    h('div', { class: 'form-grid' },
      field('p.activity', activitySelect),
      field('p.user', userInput),
      field('p.status', statusSelect),
      h('div', { class: 'form-actions' },
        h('button', { type: 'submit', class: 'btn btn-primary', id: 'prize-apply' }, t('f.apply')))));

  add(ctx.el,
    h('div', { class: 'page-head' }, h('h1', null, t('p.title'))),
    h('section', { class: 'card' },
      h('h2', null, t('p.activities')),
      activitiesError,
      tableWrap(h('table', { id: 'activities-table' },
        thead(['col.name', 'col.merchant', 'col.type', 'col.range', ['col.budget', 'num'], ['col.committed', 'num'],
          ['col.budgetLeft', 'num'], ['col.perUserDaily', 'num'], 'col.follow', 'col.prizes']),
        activitiesBody))),
    h('section', { class: 'card' },
      h('h2', null, t('p.prizes')),
      filterForm,
      prizesError,
      tableWrap(h('table', { id: 'prizes-table' },
        thead(['col.created', 'col.activity', 'col.user', 'col.type', ['col.amount', 'num'], 'col.claimState',
          'col.userMessage', 'col.lastErr', ['col.claims', 'num'], 'col.openid', 'col.redpack']),
        prizesBody)),
      h('div', { class: 'pager' }, pagerInfo, h('div', { class: 'pager-buttons' }, prev, next))));

  async function loadActivities() {
    try {
      const data = await api('/v1/activities', { query: { limit: 1000 } });
      if (!ctx.alive()) return;
      const list = data.objects || [];
      fill(activitySelect,
        h('option', { value: '' }, t('p.allActivities')),
        list.map((a) => h('option', { value: a.id, selected: a.id === f.activity }, a.name)));
      if (!list.length) {
        fill(activitiesBody, emptyRow(10, t('p.noActivities')));
        return;
      }
      syncRows(activitiesBody, list, (a) => [
        [a.name, () => h('strong', null, a.name)],
        [a.merchant, () => a.merchant],
        [[a.type, a.scene_id], () => [label('type', a.type), a.scene_id ? h('div', { class: 'muted small mono' }, a.scene_id) : null]],
        [[a.min_amount, a.max_amount], () => `${yuan(a.min_amount)} – ${yuan(a.max_amount)}`, 'nowrap'],
        [a.budget, () => (a.budget == null ? t('p.noLimit') : yuan(a.budget)), 'num'],
        [a.committed, () => yuan(a.committed), 'num'],
        [a.budget_left, () => (a.budget_left == null ? '—' : yuan(a.budget_left)), 'num'],
        [a.per_user_daily, () => (a.per_user_daily == null ? t('p.noLimit') : String(a.per_user_daily)), 'num'],
        [a.require_follow, () => t(a.require_follow ? 'yes' : 'no')],
        [[a.prizes, a.prize_amounts], () => prizeChips(a.prizes, a.prize_amounts)],
      ], (aid) => {
        f.activity = aid;
        activitySelect.value = aid;
        state.prizeApplied = { ...f };
        state.prizeOffset = 0;
        loadPrizes();
      });
    } catch (err) {
      if (err.unauthorized || !ctx.alive()) return;
      showAlert(activitiesError, errorText(err));
    }
  }

  let seq = 0;
  let meta = null;
  async function loadPrizes() {
    const mySeq = ++seq;
    const a = state.prizeApplied;
    try {
      const data = await api('/v1/prizes', {
        query: { activity: a.activity, user: a.user.trim(), status: a.status, offset: state.prizeOffset, limit: PAGE_SIZE },
      });
      if (!ctx.alive() || mySeq !== seq) return;
      meta = data.meta;
      showAlert(prizesError, '');
      prev.disabled = !meta.previous;
      next.disabled = !meta.next;
      setText(pagerInfo, meta.total_count === 0
        ? t('pager.none')
        : t('pager.info', { from: meta.offset + 1, to: Math.min(meta.offset + meta.limit, meta.total_count), total: meta.total_count }));
      if (!data.objects.length) {
        fill(prizesBody, emptyRow(11, t('p.noPrizes')));
        return;
      }
      syncRows(prizesBody, data.objects, (p) => [
        [p.created_at, () => timeEl(p.created_at)],
        [p.activity, () => p.activity],
        [p.user, () => mono(p.user)],
        [p.type, () => label('ptype', p.type)],
        [p.amount, () => yuan(p.amount), 'num'],
        [p.status, () => statusBadge('prize', p.status)],
        [[p.message, p.zh_message], () => (state.lang === 'zh' ? p.zh_message : p.message) || dash(), 'wrap'],
        [p.last_err_code, () => mono(p.last_err_code)],
        [p.claims, () => String(p.claims), 'num'],
        [[p.claimed_openid, p.openid], () => mono(p.claimed_openid || p.openid)],
        [[p.redpack_id, p.redpack_status], () => (p.redpack_id
          ? [h('a', { href: `#/payouts/${enc(p.redpack_id)}`, class: 'mono' }, p.mch_billno || p.redpack_id),
            p.redpack_status ? [' ', statusBadge('record', p.redpack_status)] : null]
          : dash())],
      ]);
    } catch (err) {
      if (err.unauthorized || !ctx.alive() || mySeq !== seq) return;
      showAlert(prizesError, errorText(err));
    }
  }

  filterForm.addEventListener('submit', (e) => {
    e.preventDefault();
    state.prizeApplied = { ...f };
    state.prizeOffset = 0;
    loadPrizes();
  });
  prev.addEventListener('click', () => {
    if (!meta) return;
    state.prizeOffset = Math.max(0, meta.offset - meta.limit);
    loadPrizes();
  });
  next.addEventListener('click', () => {
    if (!meta) return;
    state.prizeOffset = meta.offset + meta.limit;
    loadPrizes();
  });

  await Promise.all([loadActivities(), loadPrizes()]);
}

function prizeChips(counts, amounts) {
  const keys = statusOrder(Object.keys(counts || {}), PRIZE_STATUSES);
  if (!keys.length) return dash();
  return h('div', { class: 'chips' }, keys.map((k) => h('span', { class: 'chip' },
    statusBadge('prize', k), ' ', counts[k], ' · ', yuan((amounts || {})[k] || 0))));
}
