-- The read model applies a batch of events in one statement (events.c,
-- store_apply_batch): it advances applied_seq with INSERT ... ON CONFLICT
-- DO UPDATE and needs the seq as it was before, to tell which events of
-- the batch are new. RETURNING shows only the row after the update, so the
-- update keeps the old value here (prev_seq = the seq before the latest
-- advance; 0 for a row the batch inserted). Read under the row lock of
-- that same statement, so a concurrent applier cannot slip in between.
ALTER TABLE applied_seq ADD COLUMN prev_seq bigint NOT NULL DEFAULT 0;
