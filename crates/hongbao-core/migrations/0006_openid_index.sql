-- Payouts by receiver: the records list filtered by openid, and a
-- campaign's per-openid daily cap, which counts an openid's payouts of the
-- day across campaigns.
CREATE INDEX redpacks_by_openid ON redpacks (re_openid, created_at);
