-- Activities and prizes: the lottery flow. A prize granted to a user is
-- claimed once; the claim, its budget and daily count, and its one payout
-- record are stored in one transaction.

CREATE TABLE activities (
    id             TEXT PRIMARY KEY,
    tenant         TEXT NOT NULL,
    name           TEXT NOT NULL,
    merchant       TEXT NOT NULL,
    kind           TEXT NOT NULL,          -- normal | miniprogram
    scene_id       TEXT,
    -- The amounts a prize may have, in fen.
    min_amount     BIGINT NOT NULL,
    max_amount     BIGINT NOT NULL,
    send_name      TEXT NOT NULL,
    wishing        TEXT NOT NULL,
    act_name       TEXT NOT NULL,
    remark         TEXT NOT NULL,
    budget         BIGINT,                 -- NULL: no budget
    per_user_daily BIGINT,                 -- NULL: no daily count
    require_follow BIGINT NOT NULL,
    -- Fen of the prizes being paid or paid: never above the budget.
    committed      BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (tenant, name)
);

CREATE TABLE prizes (
    id              TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    activity_id     TEXT NOT NULL,
    user_ref        TEXT NOT NULL,          -- the tenant's own user reference
    kind            TEXT NOT NULL,          -- cash_redpack | coupon | points | goods | other
    amount          BIGINT NOT NULL,        -- fen
    openid          TEXT,                   -- bound at grant: only this openid may claim
    status          TEXT NOT NULL,          -- pending | issuing | issued | failed
    -- The payout of the current claim (one mch_billno, reused on every retry).
    redpack_id      TEXT,
    claimed_openid  TEXT,
    claim_day       TEXT,                   -- Beijing day of the claim (yyyymmdd)
    claims          BIGINT NOT NULL DEFAULT 0,
    -- Why the last claim did not pay (the prize is claimable again).
    last_err_code   TEXT,
    idempotency_key TEXT,
    request_hash    TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE INDEX prizes_by_user ON prizes (tenant, user_ref, created_at);
CREATE INDEX prizes_by_activity ON prizes (activity_id, status);
CREATE UNIQUE INDEX prizes_by_redpack ON prizes (redpack_id) WHERE redpack_id IS NOT NULL;
CREATE UNIQUE INDEX prizes_idempotency ON prizes (tenant, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Claims per openid per activity per Beijing day, for `per_user_daily`.
CREATE TABLE activity_user_days (
    activity_id TEXT NOT NULL,
    openid      TEXT NOT NULL,
    day         TEXT NOT NULL,
    claims      BIGINT NOT NULL,
    PRIMARY KEY (activity_id, openid, day)
);

CREATE INDEX redpacks_by_prize ON redpacks (prize_id) WHERE prize_id IS NOT NULL;
