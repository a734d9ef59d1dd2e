// Transfer detail: the bill, where its user's confirmation stands, Cancel,
// its calls to WeChat, and WeChat's own view. In sandbox mode, a link to
// the sandbox's page where a person plays the user and confirms.

import { label, t } from '../i18n.js';
import { state } from '../state.js';
import { api, enc, errorText } from '../lib/api.js';
import { add, append, fill, h, setText, showAlert } from '../lib/dom.js';
import { localTime, yuan } from '../lib/format.js';
import {
  ATTEMPT_COLUMNS,
  dash,
  emptyRow,
  fillAttempts,
  inLang,
  mono,
  statusBadge,
  tableWrap,
  thead,
  timeEl,
  updateBadge,
} from '../lib/ui.js';

// After these nothing changes any more: the page stops refreshing.
const FINAL = ['succeeded', 'failed', 'cancelled'];

// The record's fields in the order shown, with their labels. `confirm` and
// `sandbox_confirm_url` are shown in the confirmation card.
const FIELDS = [
  ['id', 'fld.id'],
  ['merchant', 'fld.merchant'],
  ['status', 'fld.status'],
  ['out_bill_no', 'tf.out_bill_no'],
  ['openid', 'tf.openid'],
  ['transfer_amount', 'tf.transfer_amount'],
  ['transfer_remark', 'tf.transfer_remark'],
  ['activity_name', 'tf.activity_name'],
  ['reward_description', 'tf.reward_description'],
  ['user_recv_perception', 'tf.user_recv_perception'],
  ['transfer_bill_no', 'tf.transfer_bill_no'],
  ['wechat_state', 'tf.wechat_state'],
  ['expires_at', 'tf.expires_at'],
  ['fail_reason', 'tf.fail_reason'],
  ['err_code', 'fld.err_code'],
  ['message', 'fld.message'],
  ['attempts', 'tf.attempts'],
  ['campaign_id', 'fld.campaign_id'],
  ['prize_id', 'fld.prize_id'],
  ['created_at', 'fld.created_at'],
  ['updated_at', 'fld.updated_at'],
];

// The parameters of requestMerchantTransfer, as the API names them.
const CONFIRM_PARAMS = [['mch_id', 'tf.mch_id'], ['appid', 'tf.appid'], ['package', 'tf.package']];

/** Where the bill stands, in plain words. */
function confirmationText(r) {
  switch (r.status) {
    case 'awaiting_confirmation':
      return r.expires_at
        ? t('td.state.awaiting', { time: localTime(r.expires_at) })
        : t('td.state.awaitingNoTime');
    case 'failed': {
      const reason = [r.fail_reason || r.err_code, inLang(r.message, r.zh_message)].filter(Boolean).join(' ');
      return reason ? t('td.state.failed', { reason }) : t('td.state.failedNoReason');
    }
    case 'pending':
    case 'sending':
    case 'transferring':
    case 'succeeded':
    case 'cancelling':
    case 'cancelled':
      return t(`td.state.${r.status}`);
    default:
      return t('td.state.other', { status: label('st.record', r.status) });
  }
}

/** An http(s) URL from the API, or null: anything else never becomes a link. */
function httpUrl(text) {
  if (!text) return null;
  try {
    const url = new URL(String(text), location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch (_) {
    return null;
  }
}

/**
 * A button copying `text()`; where the clipboard is refused (a page not
 * on https or localhost) it selects `target` instead, for Ctrl+C.
 */
function copyButton(id, labelKey, text, target) {
  const button = h('button', { type: 'button', class: 'btn btn-small', id }, t(labelKey));
  let resetTimer = 0;
  button.addEventListener('click', async () => {
    let copied = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text());
        copied = true;
      }
    } catch (_) { /* refused: select instead */ }
    if (!copied && target) window.getSelection().selectAllChildren(target);
    setText(button, t(copied ? 'td.copied' : 'td.copyFailed'));
    clearTimeout(resetTimer);
    resetTimer = setTimeout(() => setText(button, t(labelKey)), 2000);
  });
  return button;
}

/** mchId, appId and package, each copyable, and all three as JSON. */
function confirmParams(confirm) {
  const rows = CONFIRM_PARAMS.map(([name, key]) => {
    const value = h('span', { class: 'mono', id: `transfer-confirm-${name}` }, confirm[name] || '');
    return [
      h('dt', null, t(key)),
      h('dd', { class: 'copy-value' }, value, copyButton(`copy-confirm-${name}`, 'td.copy', () => confirm[name] || '', value)),
    ];
  });
  // The object requestMerchantTransfer takes, in its own names.
  const json = JSON.stringify({ mchId: confirm.mch_id, appId: confirm.appid, package: confirm.package }, null, 2);
  const pre = h('pre', { class: 'code', id: 'transfer-confirm-json' }, json);
  return [
    h('dl', { class: 'fields', id: 'transfer-confirm-fields' }, rows),
    pre,
    h('div', { class: 'form-actions' }, copyButton('copy-confirm-json', 'td.copyJson', () => json, pre)),
  ];
}

export async function viewTransfer(ctx, id) {
  const fields = h('dl', { class: 'fields', id: 'transfer-fields' });
  const statusEl = statusBadge('record', null, 'transfer-status');
  const polling = h('span', { class: 'muted small', id: 'transfer-polling', hidden: true }, t('td.polling'));
  const recordError = h('p', { class: 'alert alert-error', id: 'transfer-error', hidden: true });
  const stateEl = h('p', { class: 'transfer-state', id: 'transfer-state' }, t('loading'));
  const paramsBox = h('div', { id: 'transfer-confirm-params' });
  const paramsCard = h('div', { hidden: true },
    h('h3', null, t('td.confirmParams')),
    h('p', { class: 'hint' }, t('td.confirmHint')),
    paramsBox);
  const playLink = h('a', {
    id: 'play-user-confirm', class: 'btn btn-primary', target: '_blank', rel: 'noopener', hidden: true,
  }, t('td.playUser'));
  const playHint = h('p', { class: 'hint', id: 'play-user-hint', hidden: true }, t('td.playUserHint'));
  const cancelButton = h('button', { type: 'button', class: 'btn', id: 'transfer-cancel', hidden: true }, t('td.cancel'));
  const cancelHint = h('p', { class: 'hint', hidden: true }, t('td.cancelHint'));
  const cancelYes = h('button', { type: 'button', class: 'btn btn-primary', id: 'transfer-cancel-yes' }, t('td.cancelYes'));
  const cancelNo = h('button', { type: 'button', class: 'btn', id: 'transfer-cancel-no' }, t('td.cancelNo'));
  const cancelAsk = h('p', { id: 'transfer-cancel-ask' }, t('td.cancelAsk'));
  const confirmBox = h('div', {
    class: 'confirm-box', id: 'transfer-cancel-confirm', role: 'group', 'aria-labelledby': 'transfer-cancel-ask', hidden: true,
  }, cancelAsk, h('div', { class: 'form-actions' }, cancelYes, cancelNo));
  const cancelError = h('p', { class: 'alert alert-error', id: 'transfer-cancel-error', role: 'alert', hidden: true });
  const attemptsBody = h('tbody');
  const wechatBox = h('div', { id: 'transfer-wechat' });
  const wechatError = h('p', { class: 'alert alert-error', id: 'transfer-wechat-error', hidden: true });
  const askButton = h('button', { type: 'button', class: 'btn btn-primary', id: 'transfer-ask-wechat' }, t('td.askWechat'));
  const dd = {};
  for (const [name, key] of FIELDS) {
    dd[name] = h('dd', { id: `transfer-field-${name}` });
    fields.append(h('dt', null, t(key)), dd[name]);
  }
  dd.status.append(statusEl);

  add(ctx.el,
    h('a', { class: 'back', href: '#/transfers' }, t('td.back')),
    h('div', { class: 'page-head' },
      h('h1', null, t('td.title'), ' ', h('span', { class: 'mono' }, id)),
      polling),
    recordError,
    h('section', { class: 'card', id: 'transfer-confirmation' },
      h('h2', null, t('td.confirmation')),
      stateEl,
      paramsCard,
      h('div', { class: 'form-actions' }, playLink, cancelButton),
      playHint,
      cancelHint,
      confirmBox,
      cancelError),
    h('section', { class: 'card' }, h('h2', null, t('td.record')), fields),
    h('section', { class: 'card' },
      h('h2', null, t('d.attempts')),
      tableWrap(h('table', { id: 'attempts-table' }, thead(ATTEMPT_COLUMNS), attemptsBody))),
    h('section', { class: 'card', id: 'transfer-wechat-card' },
      h('div', { class: 'card-head' }, h('h2', null, t('td.wechat')), askButton),
      h('p', { class: 'hint' }, t('td.wechatHint')),
      wechatError,
      wechatBox));

  let record = null;
  let asked = false; // whether the WeChat section shows a query's answer
  let confirming = false; // whether the cancel question is open
  // Bumped by each load and each action's answer: an answer that arrives
  // after a newer one is dropped, so the page never steps back.
  let epoch = 0;

  function showRecord(r) {
    record = r;
    updateBadge(statusEl, 'record', r.status);
    showFields(r);
    showConfirmation(r);
    if (!asked) renderWechat(null);
  }

  function showFields(r) {
    // A cell is rebuilt only when its value (or the language) changed.
    const set = (name, sig, build) => {
      const signature = `${state.lang}|${JSON.stringify(sig)}`;
      if (dd[name].dataset.sig === signature) return;
      dd[name].dataset.sig = signature;
      dd[name].replaceChildren();
      append(dd[name], [build()]);
    };
    const plain = (name) => set(name, r[name], () => (r[name] == null || r[name] === '' ? dash() : String(r[name])));
    const code = (name) => set(name, r[name], () => mono(r[name]));
    const time = (name) => set(name, r[name], () => timeEl(r[name]));
    code('id');
    plain('merchant');
    code('out_bill_no');
    code('openid');
    set('transfer_amount', r.transfer_amount, () => h('strong', null, yuan(r.transfer_amount)));
    plain('transfer_remark');
    plain('activity_name');
    plain('reward_description');
    plain('user_recv_perception');
    code('transfer_bill_no');
    code('wechat_state');
    time('expires_at');
    code('fail_reason');
    code('err_code');
    const message = inLang(r.message, r.zh_message);
    set('message', message, () => message || dash());
    plain('attempts');
    set('campaign_id', r.campaign_id, () => (r.campaign_id
      ? h('a', { href: `#/campaigns/${enc(r.campaign_id)}`, class: 'mono' }, r.campaign_id)
      : dash()));
    code('prize_id');
    time('created_at');
    time('updated_at');
  }

  function showConfirmation(r) {
    const text = confirmationText(r);
    if (stateEl.textContent !== text) setText(stateEl, text);
    stateEl.dataset.state = r.status;

    const sig = JSON.stringify([state.lang, r.confirm]);
    if (paramsBox.dataset.sig !== sig) {
      paramsBox.dataset.sig = sig;
      fill(paramsBox, r.confirm ? confirmParams(r.confirm) : null);
    }
    paramsCard.hidden = !r.confirm;

    const url = httpUrl(r.sandbox_confirm_url);
    playLink.hidden = !url;
    playHint.hidden = !url;
    if (url && playLink.getAttribute('href') !== url) playLink.setAttribute('href', url);
    if (!url) playLink.removeAttribute('href');

    const awaiting = r.status === 'awaiting_confirmation';
    if (!awaiting) closeConfirm();
    cancelButton.hidden = !awaiting || confirming;
    cancelHint.hidden = !awaiting;
  }

  function showAttempts(list) {
    fillAttempts(attemptsBody, list);
  }

  function refreshAttempts() {
    api(`/v1/transfers/${enc(id)}/attempts`).then((a) => { if (ctx.alive()) showAttempts(a); }, () => {});
  }

  /** The WeChat section: a query's answer, or the record's view of the bill. */
  function renderWechat(w) {
    const row = (key, content) => [h('dt', null, t(key)), h('dd', null, content)];
    if (!w) {
      const r = record || {};
      fill(wechatBox,
        h('p', { class: 'muted small' }, t('d.notAsked')),
        h('dl', { class: 'fields', id: 'transfer-wechat-fields' },
          row('tw.state', h('span', { class: 'mono', id: 'transfer-wechat-state' }, r.wechat_state || '—')),
          row('tw.transfer_bill_no', mono(r.transfer_bill_no)),
          row('tw.fail_reason', mono(r.fail_reason))));
      return;
    }
    fill(wechatBox,
      h('p', { class: 'muted small' }, t('d.askedAt', { time: localTime(new Date().toISOString()) })),
      w.state === 'NOT_FOUND' ? h('p', { class: 'alert alert-info' }, t('td.notFound')) : null,
      h('dl', { class: 'fields', id: 'transfer-wechat-fields' },
        row('tw.state', h('span', { class: 'mono', id: 'transfer-wechat-state' }, w.state || '—')),
        row('tw.transfer_bill_no', mono(w.transfer_bill_no)),
        row('tw.fail_reason', mono(w.fail_reason)),
        row('tw.transfer_amount', w.transfer_amount == null ? '—' : yuan(w.transfer_amount)),
        row('tw.openid', mono(w.openid)),
        row('tw.create_time', timeEl(w.create_time)),
        row('tw.update_time', timeEl(w.update_time))));
  }

  async function load() {
    const mine = ++epoch;
    try {
      const [r, attempts] = await Promise.all([
        api(`/v1/transfers/${enc(id)}`),
        api(`/v1/transfers/${enc(id)}/attempts`),
      ]);
      if (!ctx.alive() || mine !== epoch) return;
      showAlert(recordError, '');
      showRecord(r);
      showAttempts(attempts);
    } catch (err) {
      if (err.unauthorized || !ctx.alive() || mine !== epoch) return;
      showAlert(recordError, errorText(err));
    }
  }

  /** Shows an action's answer; loads still on their way are dropped. */
  function showAnswer(r) {
    epoch += 1;
    showAlert(recordError, '');
    showRecord(r);
    followIfMoving();
    refreshAttempts(); // the action may have called WeChat
  }

  const moving = () => record && !FINAL.includes(record.status);
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

  // Back from the tab where the user was played: show it at once rather
  // than at the next tick (ticks are skipped while this tab is hidden).
  const onVisible = () => {
    if (!document.hidden && ctx.alive() && moving()) load();
  };
  document.addEventListener('visibilitychange', onVisible);
  ctx.onLeave(() => document.removeEventListener('visibilitychange', onVisible));

  // Cancel asks first, in the page: nothing is sent until "Yes".
  function openConfirm() {
    confirming = true;
    showAlert(cancelError, '');
    cancelButton.hidden = true;
    confirmBox.hidden = false;
    cancelNo.focus();
  }
  function closeConfirm() {
    const wasOpen = confirming;
    confirming = false;
    confirmBox.hidden = true;
    cancelYes.disabled = false;
    cancelNo.disabled = false;
    setText(cancelYes, t('td.cancelYes'));
    if (record) cancelButton.hidden = record.status !== 'awaiting_confirmation';
    if (wasOpen && !cancelButton.hidden) cancelButton.focus();
  }
  cancelButton.addEventListener('click', openConfirm);
  cancelNo.addEventListener('click', closeConfirm);
  confirmBox.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !cancelYes.disabled) closeConfirm();
  });
  cancelYes.addEventListener('click', async () => {
    if (cancelYes.disabled) return;
    cancelYes.disabled = true;
    cancelNo.disabled = true;
    setText(cancelYes, t('td.cancelling'));
    showAlert(cancelError, '');
    try {
      const r = await api(`/v1/transfers/${enc(id)}/cancel`, { method: 'POST' });
      if (!ctx.alive()) return;
      closeConfirm();
      showAnswer(r);
    } catch (err) {
      if (err.unauthorized || !ctx.alive()) return;
      closeConfirm();
      // 502: WeChat did not answer, the bill stands as it was; 409: it
      // cannot be cancelled (any more), so show where it stands now.
      showAlert(cancelError, err.status === 502
        ? t('td.cancelRetry', { msg: errorText(err).replace(/[.。]$/, '') })
        : errorText(err));
      if (err.status === 409) load();
    }
  });

  askButton.addEventListener('click', async () => {
    askButton.disabled = true;
    setText(askButton, t('td.querying'));
    showAlert(wechatError, '');
    try {
      const answer = await api('/v1/transfers/status', { query: { id } });
      if (!ctx.alive()) return;
      asked = true;
      renderWechat(answer.wechat);
      showAnswer(answer.record);
    } catch (err) {
      if (err.unauthorized || !ctx.alive()) return;
      showAlert(wechatError, errorText(err));
    } finally {
      if (ctx.alive()) {
        askButton.disabled = false;
        setText(askButton, t('td.askWechat'));
      }
    }
  });

  attemptsBody.append(emptyRow(ATTEMPT_COLUMNS.length, t('loading')));
  await load();
  followIfMoving();
}
