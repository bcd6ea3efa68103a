-- An incident lead asked this account to use a second factor (issue 18: "require a second factor
-- at next sign-in"): from then on, a session that has not proved one reaches nothing but sign-in
-- security, where the holder sets one up (from an emailed code) or uses the one they have.
ALTER TABLE accounts ADD COLUMN second_factor_required_at BIGINT;
