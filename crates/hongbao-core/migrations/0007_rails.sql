-- One ledger for every payout rail. The red packet ledger becomes
-- `payouts`, each record naming its rail (every record so far is a
-- red packet); the attempts and prizes that point at a record say
-- `payout_id`. Index names keep their first names.
ALTER TABLE redpacks RENAME TO payouts;
ALTER TABLE payouts ADD COLUMN rail TEXT NOT NULL DEFAULT 'redpack';
ALTER TABLE attempts RENAME COLUMN redpack_id TO payout_id;
ALTER TABLE prizes RENAME COLUMN redpack_id TO payout_id;
