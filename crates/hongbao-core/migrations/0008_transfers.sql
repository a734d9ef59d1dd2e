-- Transfer bills (APIv3 商家转账) in the same ledger. A transfer's row
-- keeps its out_bill_no in `mch_billno` (the order number column of every
-- rail), its payee in `re_openid`, its amount in `total_amount`, its
-- remark in `remark`, 活动名称 in `act_name`, 奖励说明 in `wishing`, its
-- user perception in `send_name`, its transfer_bill_no in `send_listid`,
-- its state in `wechat_status` and its package_info in `package`; the
-- stored `request` is the exact JSON body sent.
ALTER TABLE payouts ADD COLUMN fail_reason TEXT;
-- When WeChat closes an unconfirmed bill (24 hours after its creation).
ALTER TABLE payouts ADD COLUMN expires_at BIGINT;
CREATE INDEX payouts_by_rail ON payouts (rail, merchant, created_at);

-- Every verified callback, kept once per notification id: a duplicate or
-- a replay finds its row and changes nothing; one for a bill this ledger
-- does not know stays here for the operator (payout_id NULL).
CREATE TABLE transfer_notifications (
    merchant     TEXT NOT NULL,
    id           TEXT NOT NULL,
    out_bill_no  TEXT NOT NULL,
    state        TEXT NOT NULL,
    payout_id    TEXT,
    -- The decrypted resource (the bill), as WeChat sent it.
    resource     TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    times        BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (merchant, id)
);
CREATE INDEX transfer_notifications_unknown ON transfer_notifications (merchant, received_at)
    WHERE payout_id IS NULL;

-- An activity's prizes are paid on its rail (red packet or transfer).
ALTER TABLE activities ADD COLUMN rail TEXT NOT NULL DEFAULT 'redpack';
