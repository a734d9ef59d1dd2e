// The session's API key and the client of the /v1 API. The key lives in
// sessionStorage only (gone when the tab closes) and travels in the
// Authorization header, never in a URL.

import { t } from '../i18n.js';
import { state } from '../state.js';

const KEY_STORE = 'hongbao.apiKey'; // sessionStorage
/** Rows per page of the payouts and prizes lists. */
export const PAGE_SIZE = 20;

// What a 401 while signed in does: set by the app, which owns the screens.
let expired = () => {};

/** Sets what happens when the stored key stops working (401). */
export function onExpired(fn) {
  expired = fn;
}

/** A random UUID (v4): the Idempotency-Key of a submission. */
export function uuid() {
  if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  // randomUUID needs a secure context; getRandomValues does not.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = Array.from(b, (v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export const session = {
  key() {
    try { return sessionStorage.getItem(KEY_STORE); } catch (_) { return null; }
  },
  set(key) { sessionStorage.setItem(KEY_STORE, key); },
  clear() {
    try { sessionStorage.removeItem(KEY_STORE); } catch (_) { /* ignore */ }
  },
};

export class ApiError extends Error {
  constructor(status, body, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status; // 0: no answer
    this.body = body; // the parsed JSON answer, if any
    this.detail = detail;
    this.unauthorized = status === 401;
  }

  /** The API's `error` object, if the answer had one. */
  get error() {
    return this.body && typeof this.body === 'object' ? this.body.error || null : null;
  }
}

/**
 * The message to show for an error, in the current language: the API's
 * `message` or `zh_message`, after the field at fault unless `bare`.
 */
export function errorText(err, bare) {
  if (err instanceof ApiError) {
    const e = err.error;
    if (e) {
      const msg = state.lang === 'zh' ? e.zh_message || e.message : e.message || e.zh_message;
      return e.field && !bare ? `${e.field}: ${msg}` : String(msg);
    }
    if (err.status === 0) return t('err.network', { detail: err.detail || 'network' });
    return t('err.http', { status: err.status });
  }
  return String((err && err.message) || err);
}

function queryString(query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v == null || v === '') continue;
    params.append(k, String(v));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/**
 * Calls the API. Answers the parsed JSON (or the Response with `raw`);
 * throws ApiError otherwise. A 401 while signed in signs out: the key was
 * revoked or rotated. `key` overrides the stored key (sign-in check).
 */
export async function api(path, opts = {}) {
  const { method = 'GET', query, json, body, headers = {}, raw = false, key } = opts;
  const apiKey = key != null ? key : session.key();
  const init = {
    method,
    headers: { Accept: 'application/json', Authorization: `Bearer ${apiKey}`, ...headers },
    cache: 'no-store',
    credentials: 'omit',
    body,
  };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  }
  let res;
  try {
    res = await fetch(path + queryString(query), init);
  } catch (e) {
    throw new ApiError(0, null, e && e.message);
  }
  if (!res.ok) {
    let data = null;
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    const err = new ApiError(res.status, data);
    if (res.status === 401 && key == null) expired();
    throw err;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

export const enc = encodeURIComponent;

export async function loadMerchants() {
  state.merchants = await api('/v1/merchants');
  return state.merchants;
}
