-- The pace of each merchant's calls to WeChat, shared by every process on
-- the database: WeChat's quota is the merchant's, however many instances
-- call on its behalf. Times are the database's clock, in microseconds, so
-- that instances whose clocks disagree still share one timeline.

CREATE TABLE merchant_pace (
    merchant       TEXT PRIMARY KEY,
    -- The first slot nobody has taken yet.
    next_slot_us   BIGINT NOT NULL,
    -- Until then the pace is halved (WeChat answered FREQ_LIMIT).
    slow_until_us  BIGINT NOT NULL DEFAULT 0
);
