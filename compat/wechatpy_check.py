#!/usr/bin/env python3
"""Compatibility check: wechatpy's WeChatPay red packet API against the hongbao sandbox.

The SDK is used unchanged. The only settings that differ from production are:
  * the base URL (the `API_BASE_URL` attribute of the WeChatPay client),
  * the merchant certificate (PEM paths, as wechatpy expects), and
  * trust of the sandbox CA, through the standard `REQUESTS_CA_BUNDLE` variable
    that `requests` (which wechatpy uses) honours.

Steps: (1) sendredpack succeeds, (2) gethbinfo shows the packet, (3) the same
request signed with a wrong API key fails with SIGN_ERROR as wechatpy reports
errors (a WeChatPayException whose errcode is SIGN_ERROR).

Usage: wechatpy_check.py DATA_DIR API_BASE [--billno X] [--openid X] [--amount FEN]
(DATA_DIR and API_BASE may also come from HONGBAO_SANDBOX_DIR / HONGBAO_SANDBOX_API.)
"""
import argparse
import json
import os
import random
import sys
import time
from importlib.metadata import version

TAG = "[wechatpy]"
TIMEOUT_SECONDS = 10  # per HTTP call; wechatpy passes it to requests
WRONG_KEY = "0123456789abcdefghijklmnopqrstuv"  # 32 chars, not the sandbox's key


def fail(message):
    print(f"{TAG} FAIL: {message}", flush=True)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=os.environ.get("HONGBAO_SANDBOX_DIR"))
    parser.add_argument("api_base", nargs="?", default=os.environ.get("HONGBAO_SANDBOX_API"))
    parser.add_argument("--billno", help="mch_billno to use (default: a fresh unique one)")
    parser.add_argument("--openid", default="oWpyCheck0000000000000000001")
    parser.add_argument("--amount", type=int, default=101, help="fen (100..20000)")
    args = parser.parse_args()
    if not args.data_dir or not args.api_base:
        parser.error("DATA_DIR and API_BASE are required (or HONGBAO_SANDBOX_DIR / HONGBAO_SANDBOX_API)")

    data_dir = os.path.abspath(args.data_dir)
    with open(os.path.join(data_dir, "sandbox.json"), encoding="utf-8") as f:
        sandbox = json.load(f)

    # Trust the sandbox CA the standard `requests` way (set before any request is made).
    os.environ["REQUESTS_CA_BUNDLE"] = os.path.join(data_dir, "ca.pem")

    # Imported after the environment is set; the SDK itself is not touched.
    from wechatpy.exceptions import WeChatPayException
    from wechatpy.pay import WeChatPay

    print(f"{TAG} wechatpy {version('wechatpy')}, requests {version('requests')}, "
          f"cryptography {version('cryptography')}", flush=True)

    billno = args.billno or "WPY{}{:08d}".format(time.strftime("%Y%m%d%H%M%S"), random.randrange(10**8))
    api_base = args.api_base.rstrip("/") + "/"  # wechatpy joins '{base}{endpoint}'

    def client(api_key):
        pay = WeChatPay(
            appid=sandbox["appid"],
            api_key=api_key,
            mch_id=sandbox["mch_id"],
            mch_cert=os.path.join(data_dir, "apiclient_cert.pem"),
            mch_key=os.path.join(data_dir, "apiclient_key.pem"),
            timeout=TIMEOUT_SECONDS,
        )
        pay.API_BASE_URL = api_base
        return pay

    def send(pay):
        # client_ip is given explicitly: otherwise wechatpy resolves api.mch.weixin.qq.com
        # to guess the machine's external address.
        return pay.redpack.send(
            user_id=args.openid,
            total_amount=args.amount,
            send_name="hongbao compat",
            act_name="compat check",
            wishing="恭喜发财",
            remark="wechatpy compat check",
            client_ip="127.0.0.1",
            out_trade_no=billno,
        )

    pay = client(sandbox["api_key"])

    # (1) sendredpack
    try:
        sent = send(pay)
    except WeChatPayException as e:
        fail(f"sendredpack raised {e!r}")
    except Exception as e:  # network, TLS, ...
        fail(f"sendredpack raised {type(e).__name__}: {e}")
    if sent.get("result_code") != "SUCCESS" or sent.get("mch_billno") != billno:
        fail(f"sendredpack answered {sent!r}")
    if not sent.get("send_listid"):
        fail(f"sendredpack answered no send_listid: {sent!r}")
    print(f"{TAG} 1/3 sendredpack OK: mch_billno={billno} send_listid={sent['send_listid']} "
          f"total_amount={sent.get('total_amount')}", flush=True)

    # (2) gethbinfo
    try:
        info = pay.redpack.query(billno)
    except WeChatPayException as e:
        fail(f"gethbinfo raised {e!r}")
    except Exception as e:
        fail(f"gethbinfo raised {type(e).__name__}: {e}")
    problems = []
    if info.get("mch_billno") != billno:
        problems.append(f"mch_billno={info.get('mch_billno')!r}")
    if info.get("detail_id") != sent["send_listid"]:
        problems.append(f"detail_id={info.get('detail_id')!r} (send_listid {sent['send_listid']!r})")
    if str(info.get("total_amount")) != str(args.amount):
        problems.append(f"total_amount={info.get('total_amount')!r}")
    if info.get("status") not in ("SENDING", "SENT", "RECEIVED"):
        problems.append(f"status={info.get('status')!r}")
    if problems:
        fail(f"gethbinfo does not show the packet ({', '.join(problems)}): {info!r}")
    print(f"{TAG} 2/3 gethbinfo OK: mch_billno={billno} status={info['status']} "
          f"detail_id={info['detail_id']} total_amount={info['total_amount']}", flush=True)

    # (3) the same sendredpack, signed with a wrong key
    try:
        answer = send(client(WRONG_KEY))
    except WeChatPayException as e:
        if e.errcode != "SIGN_ERROR":
            fail(f"wrong key: expected errcode SIGN_ERROR, got {e!r}")
        print(f"{TAG} 3/3 wrong key OK: WeChatPayException errcode={e.errcode} "
              f"return_code={e.return_code} result_code={e.result_code} message={e.errmsg}", flush=True)
    except Exception as e:
        fail(f"wrong key: expected WeChatPayException SIGN_ERROR, got {type(e).__name__}: {e}")
    else:
        fail(f"wrong key: the request succeeded: {answer!r}")

    print(f"{TAG} PASS", flush=True)


if __name__ == "__main__":
    main()
