// State that outlives a single view (drafts survive a language switch): the
// one object that the modules share.

export const LANG_STORE = 'hongbao.lang'; // localStorage

export const state = {
  lang: initialLang(),
  merchants: [],
  signInMessage: null, // a dictionary key shown on the sign-in screen
  bucket: 'hour',
  // Texts start empty: left empty, the merchant's configured defaults apply.
  send: { merchant: '', openid: '', amount: '', wishing: '', act_name: '', remark: '' },
  sendKey: null, // the Idempotency-Key of the submission being made
  payoutFilters: emptyPayoutFilters(), // as typed in the form
  payoutApplied: emptyPayoutFilters(), // as last applied: what the table shows
  payoutOffset: 0,
  transferFilters: emptyTransferFilters(), // as typed
  transferApplied: emptyTransferFilters(), // as applied
  transferOffset: 0,
  campaignDraft: { name: '', merchant: '', amount: '', allowRepeat: false, dryRun: false },
  prizeFilters: { activity: '', user: '', status: '' }, // as typed
  prizeApplied: { activity: '', user: '', status: '' }, // as applied
  prizeOffset: 0,
};

export function emptyPayoutFilters() {
  return { status: '', merchant: '', re_openid: '', mch_billno: '', campaign_id: '', from: '', to: '' };
}

export function emptyTransferFilters() {
  return { status: '', merchant: '', openid: '', out_bill_no: '', campaign_id: '', from: '', to: '' };
}

function initialLang() {
  try {
    const saved = localStorage.getItem(LANG_STORE);
    if (saved === 'en' || saved === 'zh') return saved;
  } catch (_) { /* storage disabled */ }
  return (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh' : 'en';
}
