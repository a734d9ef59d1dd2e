-- The pace of each merchant's calls to WeChat (by mch_id: WeChat's quota
-- is the merchant account's, whatever names the configuration gives it),
-- shared by every process on the database, however many instances call on
-- its behalf. Times are the database's clock, in microseconds, so
-- that instances whose clocks disagree still share one timeline.

CREATE TABLE merchant_pace (
    mch_id         TEXT PRIMARY KEY,
    -- The first slot nobody has taken yet.
    next_slot_us   BIGINT NOT NULL,
    -- Until then the pace is halved (WeChat answered FREQ_LIMIT).
    slow_until_us  BIGINT NOT NULL DEFAULT 0
);
