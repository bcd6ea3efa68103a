-- One table for every single-use token (issue 12): invitations, second-factor set-up links,
-- password resets, email changes, second-factor challenges and passkey ceremonies had a table
-- each with the same columns and the same rule (a token works once, before it expires). Only a
-- SHA-256 of each token is stored. Live tokens keep working across the upgrade: every row moves
-- here as it was.
CREATE TABLE single_use_tokens (
    token_hash BYTEA PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('invitation', 'mfa_setup', 'password_reset', 'email_change', 'mfa_challenge', 'passkey_ceremony')),
    -- What an invitation or a passkey ceremony is for; no other kind has one.
    purpose    TEXT CHECK (
        (kind = 'invitation' AND purpose IN ('activate_patient', 'join_staff', 'join_operator', 'first_operator'))
        OR (kind = 'passkey_ceremony' AND purpose IN ('register', 'sign_in', 'second_factor', 'confirm'))
        OR (kind NOT IN ('invitation', 'passkey_ceremony') AND purpose IS NULL)
    ),
    account_id UUID REFERENCES accounts (id),
    -- The new address of an email change; the server's state of a passkey ceremony.
    detail     TEXT,
    -- Wrong codes given with a second-factor challenge.
    failures   INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX single_use_tokens_by_account ON single_use_tokens (account_id, kind, created_at);
CREATE INDEX single_use_tokens_by_expiry ON single_use_tokens (expires_at);

INSERT INTO single_use_tokens (token_hash, kind, purpose, account_id, created_at, expires_at, used_at)
    SELECT token_hash, 'invitation', purpose, account_id, created_at, expires_at, used_at FROM invitations;
INSERT INTO single_use_tokens (token_hash, kind, account_id, created_at, expires_at, used_at)
    SELECT token_hash, 'mfa_setup', account_id, created_at, expires_at, used_at FROM mfa_setup_links;
INSERT INTO single_use_tokens (token_hash, kind, account_id, created_at, expires_at, used_at)
    SELECT token_hash, 'password_reset', account_id, created_at, expires_at, used_at FROM password_resets;
INSERT INTO single_use_tokens (token_hash, kind, account_id, detail, created_at, expires_at, used_at)
    SELECT token_hash, 'email_change', account_id, new_email, created_at, expires_at, used_at FROM email_changes;
INSERT INTO single_use_tokens (token_hash, kind, account_id, failures, created_at, expires_at, used_at)
    SELECT token_hash, 'mfa_challenge', account_id, failures, created_at, expires_at, used_at FROM mfa_challenges;
-- A ceremony kept no creation time; it lived five minutes.
INSERT INTO single_use_tokens (token_hash, kind, purpose, account_id, detail, created_at, expires_at)
    SELECT token_hash, 'passkey_ceremony', purpose, account_id, state, expires_at - 300, expires_at FROM webauthn_ceremonies;

DROP TABLE invitations;
DROP TABLE mfa_setup_links;
DROP TABLE password_resets;
DROP TABLE email_changes;
DROP TABLE mfa_challenges;
DROP TABLE webauthn_ceremonies;
