-- Campaigns: a list of payouts from one file, resumable after any crash.

CREATE TABLE campaigns (
    id           TEXT PRIMARY KEY,
    tenant       TEXT NOT NULL,
    name         TEXT NOT NULL,
    merchant     TEXT NOT NULL,
    -- SHA-256 of the file: the same name with another file is refused.
    file_sha256  TEXT NOT NULL,
    -- The defaults the rows were read with (amount, texts), as JSON.
    options      TEXT NOT NULL,
    rows         BIGINT NOT NULL,
    total_amount BIGINT NOT NULL,
    -- Rows stored so far, in file order: an interrupted import goes on from here.
    imported     BIGINT NOT NULL DEFAULT 0,
    paused       BIGINT NOT NULL DEFAULT 0,
    -- An API caller's Idempotency-Key and the hash of its request.
    idempotency_key TEXT,
    request_hash    TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (tenant, name)
);

CREATE UNIQUE INDEX campaigns_idempotency ON campaigns (tenant, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

ALTER TABLE redpacks ADD COLUMN campaign_line BIGINT;

-- One record per line of a campaign's file (NULLs, outside campaigns, are distinct).
CREATE UNIQUE INDEX redpacks_campaign_line ON redpacks (campaign_id, campaign_line);

-- The unique index above serves lookups by campaign too.
DROP INDEX redpacks_by_campaign;
