#!/usr/bin/env bash
# Third-party SDK compatibility check for the hongbao sandbox.
#
# Usage: compat/run.sh PATH_TO_HONGBAO_BINARY
#
# Starts `hongbao sandbox` on a free loopback port with a fresh data dir, installs
# wechatpy (PyPI, into compat/.venv) and tenpay (npm, `npm ci` into compat/node_modules),
# runs compat/wechatpy_check.py and compat/tenpay_check.js against it, then checks the
# admin ledger holds exactly the two packets they paid. Exits non-zero on any failure.
#
# Environment: PYTHON (default python3) builds the venv; KEEP_DATA=1 keeps the temp dir.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 PATH_TO_HONGBAO_BINARY" >&2
    exit 2
fi
if [[ ! -x $1 ]]; then
    echo "run.sh: $1 is not an executable file" >&2
    exit 2
fi

BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python3}
READY_TIMEOUT=20     # seconds for the sandbox to accept connections
CHECK_TIMEOUT=120    # seconds per SDK check (each HTTP call has its own timeout too)

# Loopback traffic must never go through a proxy configured for the registries.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hongbao-compat.XXXXXX")
DATA="$WORK/data"
LOG="$WORK/sandbox.log"
SANDBOX_PID=""

cleanup() {
    local status=$?
    if [[ -n $SANDBOX_PID ]] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
        kill "$SANDBOX_PID" 2>/dev/null || true
        wait "$SANDBOX_PID" 2>/dev/null || true
    fi
    if [[ $status -ne 0 || ${KEEP_DATA:-0} == 1 ]]; then
        if [[ -s $LOG ]]; then
            echo "---- sandbox log (last 40 lines) ----"
            tail -n 40 "$LOG"
            echo "-------------------------------------"
        fi
        echo "kept $WORK for inspection"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { echo "==> $*"; }

# ---------------------------------------------------------------- dependencies
step "python venv at compat/.venv (wechatpy)"
if [[ ! -x $HERE/.venv/bin/python ]]; then
    "$PYTHON" -m venv "$HERE/.venv"
fi
VENV_PY="$HERE/.venv/bin/python"
"$VENV_PY" -m pip install --disable-pip-version-check --quiet -r "$HERE/requirements.txt"

step "npm ci in compat/ (tenpay)"
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)

# ---------------------------------------------------------------- the sandbox
# A free port P for the HTTPS API whose neighbour P+1 (the admin API) is free too.
free_port_pair() {
    "$VENV_PY" - <<'EOF'
import socket, sys
for _ in range(50):
    with socket.socket() as a:
        a.bind(("127.0.0.1", 0))
        port = a.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as b:
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        print(port)
        sys.exit(0)
sys.exit("no free port pair found")
EOF
}

# Waits until the HTTPS port accepts TCP connections and the admin API answers /ledger.
wait_ready() {
    "$VENV_PY" - "$1" "$2" "$READY_TIMEOUT" "$SANDBOX_PID" <<'EOF'
import os, socket, sys, time, urllib.request
port, admin, limit, pid = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("sandbox exited")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/ledger", timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(f"sandbox not ready after {limit:.0f} s")
EOF
}

PORT=""
for attempt in 1 2 3 4 5; do
    candidate=$(free_port_pair)
    step "starting sandbox on 127.0.0.1:$candidate (admin $((candidate + 1))), attempt $attempt"
    "$BIN" sandbox --listen "127.0.0.1:$candidate" --data-dir "$DATA" >"$LOG" 2>&1 &
    SANDBOX_PID=$!
    if wait_ready "$candidate" "$((candidate + 1))"; then
        PORT=$candidate
        break
    fi
    # Lost a race for the port, or something worse: stop it and try another port.
    kill "$SANDBOX_PID" 2>/dev/null || true
    wait "$SANDBOX_PID" 2>/dev/null || true
    SANDBOX_PID=""
done
if [[ -z $PORT ]]; then
    echo "FAIL: the sandbox did not start" >&2
    exit 1
fi
API="https://127.0.0.1:$PORT"
ADMIN="http://127.0.0.1:$((PORT + 1))"
echo "    sandbox ready: API $API, admin $ADMIN, data $DATA"

# ---------------------------------------------------------------- the checks
STAMP=$(date +%Y%m%d%H%M%S)
WPY_BILLNO="WPY${STAMP}$(printf '%05d' "$RANDOM")"
TNP_BILLNO="TNP${STAMP}$(printf '%05d' "$RANDOM")"
WPY_OPENID="oWpyCheck0000000000000000001"
TNP_OPENID="oTenpayCheck0000000000000001"
WPY_AMOUNT=101
TNP_AMOUNT=102

failed=()

step "wechatpy check"
if ! timeout "$CHECK_TIMEOUT" "$VENV_PY" "$HERE/wechatpy_check.py" "$DATA" "$API" \
        --billno "$WPY_BILLNO" --openid "$WPY_OPENID" --amount "$WPY_AMOUNT"; then
    failed+=(wechatpy)
fi

step "tenpay check"
if ! NODE_EXTRA_CA_CERTS="$DATA/ca.pem" timeout "$CHECK_TIMEOUT" \
        node --openssl-legacy-provider "$HERE/tenpay_check.js" "$DATA" "$API" \
        --billno "$TNP_BILLNO" --openid "$TNP_OPENID" --amount "$TNP_AMOUNT"; then
    failed+=(tenpay)
fi

# Exactly the two paid packets. Each was requested once: the wrong-key retry reused the
# mch_billno, and a request whose signature fails must not count as a replay.
step "ledger check"
if ! "$VENV_PY" - "$ADMIN/ledger" "$WPY_BILLNO:$WPY_OPENID:$WPY_AMOUNT" \
        "$TNP_BILLNO:$TNP_OPENID:$TNP_AMOUNT" <<'EOF'
import json, sys, urllib.request
url, expected = sys.argv[1], {}
for spec in sys.argv[2:]:
    billno, openid, amount = spec.split(":")
    expected[billno] = (openid, int(amount))
with urllib.request.urlopen(url, timeout=5) as r:
    ledger = json.load(r)
problems = []
if len(ledger) != len(expected):
    problems.append(f"{len(ledger)} ledger entries, expected {len(expected)}")
for entry in ledger:
    billno = entry.get("mch_billno")
    if billno not in expected:
        problems.append(f"unexpected entry {billno}")
        continue
    openid, amount = expected.pop(billno)
    got = (entry.get("api"), entry.get("openid"), entry.get("amount"), entry.get("paid"),
           entry.get("times_requested"))
    want = ("sendredpack", openid, amount, True, 1)
    if got != want or entry.get("status") not in ("SENDING", "SENT", "RECEIVED"):
        problems.append(f"{billno}: (api, openid, amount, paid, times_requested) = {got}, "
                        f"status {entry.get('status')}; expected {want}, SENDING/SENT/RECEIVED")
    else:
        print(f"    ledger: {billno} openid={openid} amount={amount} status={entry['status']} "
              f"paid=true times_requested=1")
for billno in expected:
    problems.append(f"missing entry {billno}")
for p in problems:
    print(f"    ledger FAIL: {p}")
sys.exit(1 if problems else 0)
EOF
then
    failed+=(ledger)
fi

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "ALL PASSED: wechatpy and tenpay work unchanged against the sandbox"
