#!/usr/bin/env node
// Compatibility check: the npm package `tenpay` against the hongbao sandbox.
//
// The SDK is used unchanged. The only settings that differ from production are:
//   * the base URL: tenpay has no option for it, so the instance's `urls` map is
//     rewritten (https://api.mch.weixin.qq.com -> API_BASE, same paths);
//   * the merchant certificate: tenpay takes only a PKCS#12 buffer (`pfx`) whose
//     passphrase is the mch_id. The sandbox's p12 uses legacy RC2-40 encryption, so
//     Node >= 17 must run with --openssl-legacy-provider;
//   * trust of the sandbox CA, through the standard NODE_EXTRA_CA_CERTS variable
//     (it must be set before node starts; run.sh does it).
//
// Steps: (1) sendRedpack succeeds, (2) redpackQuery (gethbinfo) shows the packet,
// (3) the same request signed with a wrong API key fails with SIGN_ERROR as tenpay
// reports errors (a rejected promise whose Error message is the err_code).
//
// Usage: node --openssl-legacy-provider tenpay_check.js DATA_DIR API_BASE
//          [--billno X] [--openid X] [--amount FEN]
// (DATA_DIR and API_BASE may also come from HONGBAO_SANDBOX_DIR / HONGBAO_SANDBOX_API.)
'use strict';

const fs = require('fs');
const path = require('path');
const tenpay = require('tenpay');

const TAG = '[tenpay]';
const WRONG_KEY = '0123456789abcdefghijklmnopqrstuv'; // 32 chars, not the sandbox's key
const WATCHDOG_MS = 60000; // tenpay itself times out each call after 10 s connect / 15 s response

function fail(message) {
  console.log(`${TAG} FAIL: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { openid: 'oTenpayCheck0000000000000001', amount: 102 };
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--billno' || a === '--openid' || a === '--amount') {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      opts[a.slice(2)] = argv[++i];
    } else if (a.startsWith('--')) {
      fail(`unknown option ${a}`);
    } else {
      positional.push(a);
    }
  }
  opts.dataDir = positional[0] || process.env.HONGBAO_SANDBOX_DIR;
  opts.apiBase = positional[1] || process.env.HONGBAO_SANDBOX_API;
  if (!opts.dataDir || !opts.apiBase) {
    fail('usage: tenpay_check.js DATA_DIR API_BASE [--billno X] [--openid X] [--amount FEN]');
  }
  opts.amount = Number(opts.amount);
  return opts;
}

function pad(n, width) {
  return String(n).padStart(width, '0');
}

function freshBillno() {
  const d = new Date();
  const stamp = `${d.getFullYear()}${pad(d.getMonth() + 1, 2)}${pad(d.getDate(), 2)}` +
    `${pad(d.getHours(), 2)}${pad(d.getMinutes(), 2)}${pad(d.getSeconds(), 2)}`;
  return `TNP${stamp}${pad(Math.floor(Math.random() * 1e8), 8)}`;
}

async function main() {
  const watchdog = setTimeout(() => fail(`no result after ${WATCHDOG_MS} ms`), WATCHDOG_MS);
  watchdog.unref();

  const opts = parseArgs(process.argv.slice(2));
  const dataDir = path.resolve(opts.dataDir);
  const sandbox = JSON.parse(fs.readFileSync(path.join(dataDir, 'sandbox.json'), 'utf8'));
  const pfx = fs.readFileSync(path.join(dataDir, 'apiclient_cert.p12'));
  const apiBase = opts.apiBase.replace(/\/+$/, '');
  const billno = opts.billno || freshBillno();

  const tenpayVersion = require('tenpay/package.json').version;
  const urllibVersion = require('urllib/package.json').version;
  console.log(`${TAG} tenpay ${tenpayVersion}, urllib ${urllibVersion}, node ${process.version}`);
  if (!process.env.NODE_EXTRA_CA_CERTS) {
    console.log(`${TAG} note: NODE_EXTRA_CA_CERTS is not set; the sandbox CA (${dataDir}/ca.pem) will not be trusted`);
  }

  const client = (partnerKey) => {
    const api = new tenpay({
      appid: sandbox.appid,
      mchid: sandbox.mch_id,
      partnerKey,
      pfx,
      spbill_create_ip: '127.0.0.1',
    });
    // Base URL only: same paths, the sandbox's origin.
    const urls = {};
    for (const [name, url] of Object.entries(api.urls)) {
      urls[name] = url.replace(/^https:\/\/api\.mch\.weixin\.qq\.com/, apiBase);
    }
    api.urls = urls;
    return api;
  };

  const request = () => ({
    mch_billno: billno,
    send_name: 'hongbao compat',
    re_openid: opts.openid,
    total_amount: opts.amount,
    wishing: '恭喜发财',
    act_name: 'compat check',
    remark: 'tenpay compat check',
    client_ip: '127.0.0.1',
  });

  const legacy = process.execArgv.includes('--openssl-legacy-provider') ||
    /--openssl-legacy-provider/.test(process.env.NODE_OPTIONS || '');
  if (!legacy) {
    console.log(`${TAG} note: node runs without --openssl-legacy-provider; the RC2-40 p12 may be refused ` +
      '("Unsupported PKCS12 PFX data")');
  }

  const api = client(sandbox.api_key);

  // (1) sendredpack
  let sent;
  try {
    sent = await api.sendRedpack(request());
  } catch (err) {
    fail(`sendRedpack rejected: ${err && err.stack ? err.stack : err}`);
  }
  if (sent.result_code !== 'SUCCESS' || sent.mch_billno !== billno || !sent.send_listid) {
    fail(`sendRedpack answered ${JSON.stringify(sent)}`);
  }
  console.log(`${TAG} 1/3 sendredpack OK: mch_billno=${billno} send_listid=${sent.send_listid} ` +
    `total_amount=${sent.total_amount}`);

  // (2) gethbinfo
  let info;
  try {
    info = await api.redpackQuery({ mch_billno: billno });
  } catch (err) {
    fail(`redpackQuery rejected: ${err && err.stack ? err.stack : err}`);
  }
  const problems = [];
  if (info.mch_billno !== billno) problems.push(`mch_billno=${info.mch_billno}`);
  if (info.detail_id !== sent.send_listid) problems.push(`detail_id=${info.detail_id} (send_listid ${sent.send_listid})`);
  if (String(info.total_amount) !== String(opts.amount)) problems.push(`total_amount=${info.total_amount}`);
  if (!['SENDING', 'SENT', 'RECEIVED'].includes(info.status)) problems.push(`status=${info.status}`);
  if (problems.length) {
    fail(`redpackQuery does not show the packet (${problems.join(', ')}): ${JSON.stringify(info)}`);
  }
  console.log(`${TAG} 2/3 gethbinfo OK: mch_billno=${billno} status=${info.status} ` +
    `detail_id=${info.detail_id} total_amount=${info.total_amount}`);

  // (3) the same sendredpack, signed with a wrong key
  let answer;
  try {
    answer = await client(WRONG_KEY).sendRedpack(request());
  } catch (err) {
    const message = err && err.message;
    if (message !== 'SIGN_ERROR') fail(`wrong key: expected Error('SIGN_ERROR'), got ${err && err.stack ? err.stack : err}`);
    console.log(`${TAG} 3/3 wrong key OK: rejected with Error('${message}')`);
    console.log(`${TAG} PASS`);
    return;
  }
  fail(`wrong key: the request succeeded: ${JSON.stringify(answer)}`);
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
