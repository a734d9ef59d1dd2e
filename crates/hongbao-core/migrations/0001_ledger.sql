-- The payout ledger. Portable SQL: the same file runs on SQLite and
-- PostgreSQL. Money is BIGINT fen; times are BIGINT milliseconds since the
-- Unix epoch, always taken from the database's clock.

CREATE TABLE redpacks (
    id              TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    merchant        TEXT NOT NULL,
    mch_id          TEXT NOT NULL,
    kind            TEXT NOT NULL,          -- normal | group | miniprogram
    status          TEXT NOT NULL,          -- pending | sending | sent | received | refunding | refunded | failed
    mch_billno      TEXT NOT NULL,
    re_openid       TEXT NOT NULL,
    total_amount    BIGINT NOT NULL,
    total_num       BIGINT NOT NULL,
    send_name       TEXT NOT NULL,
    wishing         TEXT NOT NULL,
    act_name        TEXT NOT NULL,
    remark          TEXT NOT NULL,
    scene_id        TEXT,
    -- The exact request that is signed and sent (API + parameters, nonce
    -- included), fixed before the first attempt: every retry is byte-identical.
    request         TEXT NOT NULL,
    send_listid     TEXT,
    wechat_status   TEXT,
    refund_amount   BIGINT,
    package         TEXT,
    err_code        TEXT,
    message         TEXT,
    zh_message      TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    campaign_id     TEXT,
    prize_id        TEXT,
    idempotency_key TEXT,
    request_hash    TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    -- Dispatch: when the next call (send or query) is due; NULL when none is.
    due_at          BIGINT,
    -- The next call must be gethbinfo: an earlier one may have paid.
    needs_query     BIGINT NOT NULL DEFAULT 0,
    -- Set while a dispatcher owns the record; found set by a later claimer,
    -- it means the owner vanished mid-attempt.
    in_flight       BIGINT NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     BIGINT,
    -- A merchant-level refusal (balance, daily cap) came before: if WeChat
    -- later shows the order FAILED, the payout is re-issued under a new number.
    merchant_refused BIGINT NOT NULL DEFAULT 0,
    -- Retries so far without an outcome: the back-off grows with it.
    retries         BIGINT NOT NULL DEFAULT 0,
    -- Reconciliation of sent packets: the next gethbinfo, and how many so far.
    reconcile_at    BIGINT,
    reconciles      BIGINT NOT NULL DEFAULT 0,
    UNIQUE (mch_id, mch_billno)
);

CREATE UNIQUE INDEX redpacks_idempotency ON redpacks (tenant, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX redpacks_due ON redpacks (merchant, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX redpacks_reconcile ON redpacks (merchant, reconcile_at) WHERE reconcile_at IS NOT NULL;
CREATE INDEX redpacks_by_merchant ON redpacks (merchant, created_at);
CREATE INDEX redpacks_by_campaign ON redpacks (campaign_id) WHERE campaign_id IS NOT NULL;

-- Every call to WeChat for a record: sends and queries.
CREATE TABLE attempts (
    id          TEXT PRIMARY KEY,
    redpack_id  TEXT NOT NULL,
    api         TEXT NOT NULL,
    mch_billno  TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    latency_ms  BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    err_code    TEXT,
    detail      TEXT,
    -- WeChat's answer as received (it carries no secret; requests, which
    -- carry the signature, are not stored).
    answer      TEXT
);

CREATE INDEX attempts_by_redpack ON attempts (redpack_id, started_at);

-- The per-merchant daily sequence behind mch_billno (mch_id + yyyymmdd + 10 digits).
CREATE TABLE billno_sequences (
    mch_id  TEXT NOT NULL,
    day     TEXT NOT NULL,
    last    BIGINT NOT NULL,
    PRIMARY KEY (mch_id, day)
);

-- Merchants whose payouts are stopped until an operator resumes them.
CREATE TABLE merchant_pauses (
    merchant   TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    err_code   TEXT,
    message    TEXT NOT NULL,
    paused_at  BIGINT NOT NULL
);
