-- Defences against credential stuffing (issue 3).

-- Consecutive failed sign-ins on an account from browsers it has not used before, and the last
-- one's time: the exponential back-off and the cap of 100 (NIST SP 800-63B) are read from here.
-- A finished sign-in or a new password sets the count back to 0.
ALTER TABLE accounts ADD COLUMN failed_sign_ins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN last_failed_sign_in_at BIGINT;
-- Set when the account's password was found on the breached/common list at sign-in: it must
-- be changed before the account reaches anything else.
ALTER TABLE accounts ADD COLUMN password_breached_at BIGINT;

-- Wrong passwords typed in a browser the account knows: ten in a row and it is forgotten.
ALTER TABLE known_devices ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;

-- Fixed-window attempt counters shared by every node: per address ("ip:"), per /24 or /64
-- ("net:"), per known browser ("dev:") and platform-wide ("all:").
CREATE TABLE sign_in_windows (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    attempts     BIGINT NOT NULL
);

-- Sign-ins that did not succeed, per minute, platform-wide: the adaptive limit compares the
-- last two minutes with the hour before.
CREATE TABLE sign_in_failure_minutes (
    minute   BIGINT PRIMARY KEY,
    failures BIGINT NOT NULL
);

-- Single-use links to choose a new password ("Forgot your password?", or after a breached
-- password). Only a SHA-256 of the token is kept.
CREATE TABLE password_resets (
    token_hash BLOB PRIMARY KEY,
    account_id BLOB NOT NULL REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX password_resets_by_account ON password_resets (account_id, created_at);

-- A change of email waits for its link, sent to the new address, to be opened.
CREATE TABLE email_changes (
    token_hash BLOB PRIMARY KEY,
    account_id BLOB NOT NULL REFERENCES accounts (id),
    new_email  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- The same run-of-failures bookkeeping for emails that have no account (keyed by a hash of the
-- email), so that the answers to sign-in attempts do not tell which emails have one.
CREATE TABLE sign_in_phantoms (
    key                    TEXT PRIMARY KEY,
    failed_sign_ins        INTEGER NOT NULL,
    last_failed_sign_in_at BIGINT NOT NULL
);
