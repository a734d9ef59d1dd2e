// Payout detail: the record, its calls to WeChat, and WeChat's own view.

import { label, t } from '../i18n.js';
import { state } from '../state.js';
import { api, enc, errorText } from '../lib/api.js';
import { add, append, fill, h, setText, showAlert } from '../lib/dom.js';
import { localTime, yuan } from '../lib/format.js';
import {
  ATTEMPT_COLUMNS,
  beijingTimeEl,
  dash,
  emptyRow,
  fillAttempts,
  mono,
  statusBadge,
  tableWrap,
  thead,
  timeEl,
  updateBadge,
} from '../lib/ui.js';

const RECORD_FIELDS = [
  'id', 'merchant', 'type', 'status', 'mch_billno', 're_openid', 'total_amount', 'total_num',
  'send_name', 'wishing', 'act_name', 'remark', 'scene_id', 'send_listid', 'wechat_status',
  'refund_amount', 'err_code', 'message', 'attempts', 'campaign_id', 'prize_id', 'created_at', 'updated_at',
];

export async function viewPayout(ctx, id) {
  const fields = h('dl', { class: 'fields', id: 'record-fields' });
  const statusEl = statusBadge('record', null, 'detail-status');
  const polling = h('span', { class: 'muted small', id: 'detail-polling', hidden: true }, t('d.polling'));
  const recordError = h('p', { class: 'alert alert-error', id: 'detail-error', hidden: true });
  const attemptsBody = h('tbody');
  const wechatBox = h('div', { id: 'wechat-section' });
  const wechatError = h('p', { class: 'alert alert-error', id: 'wechat-error', hidden: true });
  const refreshButton = h('button', { type: 'button', class: 'btn btn-primary', id: 'refresh-wechat' }, t('d.refreshWechat'));
  const dd = {};
  for (const name of RECORD_FIELDS) {
    dd[name] = h('dd', { id: `detail-field-${name}` });
    fields.append(h('dt', null, t(`fld.${name}`)), dd[name]);
  }
  dd.status.append(statusEl);
  const miniDt = h('dt', { hidden: true }, t('fld.mini_program'));
  const miniDd = h('dd', { id: 'detail-field-mini_program', hidden: true });
  fields.append(miniDt, miniDd);

  add(ctx.el,
    h('a', { class: 'back', href: '#/payouts' }, t('d.back')),
    h('div', { class: 'page-head' },
      h('h1', null, t('d.title'), ' ', h('span', { class: 'mono' }, id)),
      polling),
    recordError,
    h('section', { class: 'card' }, h('h2', null, t('d.record')), fields),
    h('section', { class: 'card' },
      h('h2', null, t('d.attempts')),
      tableWrap(h('table', { id: 'attempts-table' },
        thead(ATTEMPT_COLUMNS), attemptsBody))),
    h('section', { class: 'card', id: 'wechat-card' },
      h('div', { class: 'card-head' }, h('h2', null, t('d.wechat')), refreshButton),
      h('p', { class: 'hint' }, t('d.wechatHint')),
      wechatError,
      wechatBox));

  let record = null;
  let asked = false; // whether the WeChat section shows a gethbinfo answer

  function showRecord(r) {
    record = r;
    updateBadge(statusEl, 'record', r.status);
    const set = (name, content) => {
      const sig = `${state.lang}|${JSON.stringify(content && content.sig)}`;
      if (dd[name].dataset.sig === sig) return;
      dd[name].dataset.sig = sig;
      dd[name].replaceChildren();
      append(dd[name], [content.build()]);
    };
    const plain = (v) => ({ sig: v, build: () => (v == null || v === '' ? dash() : String(v)) });
    const code = (v) => ({ sig: v, build: () => mono(v) });
    set('id', code(r.id));
    set('merchant', plain(r.merchant));
    const warnings = r.warnings || [];
    set('type', {
      sig: [r.type, warnings.map((w) => w.code)],
      build: () => h('div', null, label('type', r.type),
        ...warnings.map((w) => h('div', { class: 'muted small' },
          state.lang === 'zh' ? w.zh_message : w.message))),
    });
    set('mch_billno', code(r.mch_billno));
    set('re_openid', code(r.re_openid));
    set('total_amount', { sig: r.total_amount, build: () => h('strong', null, yuan(r.total_amount)) });
    set('total_num', plain(r.total_num));
    set('send_name', plain(r.send_name));
    set('wishing', plain(r.wishing));
    set('act_name', plain(r.act_name));
    set('remark', plain(r.remark));
    set('scene_id', plain(r.scene_id));
    set('send_listid', code(r.send_listid));
    set('wechat_status', code(r.wechat_status));
    set('refund_amount', { sig: r.refund_amount, build: () => (r.refund_amount == null ? dash() : yuan(r.refund_amount)) });
    set('err_code', code(r.err_code));
    set('message', plain(state.lang === 'zh' ? r.zh_message || r.message : r.message || r.zh_message));
    set('attempts', plain(r.attempts));
    set('campaign_id', { sig: r.campaign_id, build: () => (r.campaign_id ? h('a', { href: `#/campaigns/${enc(r.campaign_id)}`, class: 'mono' }, r.campaign_id) : dash()) });
    set('prize_id', code(r.prize_id));
    set('created_at', { sig: r.created_at, build: () => timeEl(r.created_at) });
    set('updated_at', { sig: r.updated_at, build: () => timeEl(r.updated_at) });
    miniDt.hidden = !r.mini_program;
    miniDd.hidden = !r.mini_program;
    if (r.mini_program) fill(miniDd, h('pre', { class: 'code' }, JSON.stringify(r.mini_program, null, 2)));
    if (!asked) renderWechat(null);
  }

  function showAttempts(list) {
    fillAttempts(attemptsBody, list);
  }

  /** The WeChat section: gethbinfo's answer, or the record's view of it. */
  function renderWechat(w) {
    const row = (key, content) => [h('dt', null, t(key)), h('dd', null, content)];
    if (!w) {
      const r = record || {};
      fill(wechatBox,
        h('p', { class: 'muted small' }, t('d.notAsked')),
        h('dl', { class: 'fields', id: 'wechat-fields' },
          row('w.status', h('span', { class: 'mono', id: 'wechat-status' }, r.wechat_status || '—')),
          row('fld.send_listid', mono(r.send_listid)),
          row('w.refund_amount', h('span', { id: 'wechat-refund-amount' }, r.refund_amount == null ? '—' : yuan(r.refund_amount)))));
      return;
    }
    const hblist = Array.isArray(w.hblist) ? w.hblist : [];
    fill(wechatBox,
      h('p', { class: 'muted small' }, t('d.askedAt', { time: localTime(new Date().toISOString()) })),
      w.status === 'NOT_FOUND' ? h('p', { class: 'alert alert-info' }, t('d.notFound')) : null,
      h('dl', { class: 'fields', id: 'wechat-fields' },
        row('w.status', h('span', { class: 'mono', id: 'wechat-status' }, w.status || '—')),
        row('w.detail_id', mono(w.detail_id)),
        row('w.send_type', w.send_type || '—'),
        row('w.hb_type', w.hb_type || '—'),
        row('w.total_num', w.total_num == null ? '—' : String(w.total_num)),
        row('w.total_amount', w.total_amount == null ? '—' : yuan(w.total_amount)),
        row('w.reason', w.reason || '—'),
        row('w.send_time', beijingTimeEl(w.send_time)),
        row('w.refund_time', h('span', { id: 'wechat-refund-time' }, beijingTimeEl(w.refund_time))),
        row('w.refund_amount', h('span', { id: 'wechat-refund-amount' }, w.refund_amount == null ? '—' : yuan(w.refund_amount)))),
      h('h3', null, t('d.hblist')),
      tableWrap(h('table', { id: 'hblist-table' },
        thead(['col.openid', ['col.amount', 'num'], 'col.rcvTime']),
        h('tbody', null, hblist.length === 0
          ? emptyRow(3, t('empty'))
          : hblist.map((x) => h('tr', null,
            h('td', null, mono(x.openid)),
            h('td', { class: 'num' }, x.amount == null ? '—' : yuan(x.amount)),
            h('td', null, beijingTimeEl(x.rcv_time))))))));
  }

  async function load() {
    try {
      const [r, attempts] = await Promise.all([
        api(`/v1/redpacks/${enc(id)}`),
        api(`/v1/redpacks/${enc(id)}/attempts`),
      ]);
      if (!ctx.alive()) return;
      showAlert(recordError, '');
      showRecord(r);
      showAttempts(attempts);
    } catch (err) {
      if (err.unauthorized || !ctx.alive()) return;
      showAlert(recordError, errorText(err));
    }
  }

  const moving = () => record && (record.status === 'pending' || record.status === 'sending');
  let stopPolling = null;
  function followIfMoving() {
    if (moving() && !stopPolling) {
      polling.hidden = false;
      stopPolling = ctx.poll(2000, async () => {
        await load();
        if (moving()) return true;
        polling.hidden = true;
        stopPolling = null;
        return false;
      });
    }
  }

  refreshButton.addEventListener('click', async () => {
    refreshButton.disabled = true;
    setText(refreshButton, t('d.querying'));
    showAlert(wechatError, '');
    try {
      const answer = await api('/v1/redpacks/status', { query: { id } });
      if (!ctx.alive()) return;
      asked = true;
      showRecord(answer.record);
      renderWechat(answer.wechat);
      followIfMoving();
      // The status call may have added an attempt (gethbinfo).
      api(`/v1/redpacks/${enc(id)}/attempts`).then((a) => { if (ctx.alive()) showAttempts(a); }, () => {});
    } catch (err) {
      if (err.unauthorized || !ctx.alive()) return;
      showAlert(wechatError, errorText(err));
    } finally {
      if (ctx.alive()) {
        refreshButton.disabled = false;
        setText(refreshButton, t('d.refreshWechat'));
      }
    }
  });

  attemptsBody.append(emptyRow(6, t('loading')));
  await load();
  followIfMoving();
}
