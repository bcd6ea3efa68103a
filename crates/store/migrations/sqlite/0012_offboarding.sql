-- People leave (issue 13): a practice removes a member of staff (the row stays, marked, so the
-- access log's names still resolve; the account is disabled with it), and an operator disables
-- an account with a reason the operators' page shows.
ALTER TABLE staff ADD COLUMN removed_at BIGINT;
ALTER TABLE accounts ADD COLUMN disabled_reason TEXT;
