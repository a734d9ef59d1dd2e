// Money and time. Money is integer fen end to end: parsed from yuan strings
// and formatted back with integer arithmetic, never through a float.

/** Integer fen as "¥1,234.56", with integer arithmetic only. */
export function yuan(fen) {
  if (fen == null || fen === '') return '—';
  const n = Number(fen);
  if (!Number.isSafeInteger(n)) return String(fen);
  const abs = Math.abs(n);
  const cents = abs % 100;
  const whole = (abs - cents) / 100; // exact: abs - cents is a multiple of 100
  const grouped = String(whole).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${n < 0 ? '-' : ''}¥${grouped}.${String(cents).padStart(2, '0')}`;
}

/** Yuan text ("1.88", "5", "¥2.5") to integer fen, or null. No floats. */
export function parseYuan(text) {
  const m = /^(\d{1,9})(?:\.(\d{0,2}))?$/.exec(String(text).trim().replace(/^[¥￥]\s*/, ''));
  if (!m) return null;
  return parseInt(m[1], 10) * 100 + parseInt((m[2] || '').padEnd(2, '0'), 10);
}

/** Fen back to a plain yuan string ("1.88") for an API that wants yuan. */
export function fenToYuanString(fen) {
  const cents = fen % 100;
  return `${(fen - cents) / 100}.${String(cents).padStart(2, '0')}`;
}

export const pad2 = (n) => String(n).padStart(2, '0');

/** An RFC 3339 time as "YYYY-MM-DD HH:MM:SS" in the browser's time zone. */
export function localTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} `
    + `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}


/** A local calendar date (input type=date) to an RFC 3339 UTC instant. */
export function localDateToRfc3339(date, addDays) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return '';
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + (addDays || 0));
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
