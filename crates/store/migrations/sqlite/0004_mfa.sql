-- Second factors (issue 3, first part): TOTP authenticators, single-use recovery codes (hashed),
-- and the short-lived challenges between a correct password and a correct second factor.

CREATE TABLE totp_factors (
    account_id   BLOB PRIMARY KEY REFERENCES accounts (id),
    secret       BLOB NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE recovery_codes (
    account_id BLOB NOT NULL REFERENCES accounts (id),
    code_hash  BLOB NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (account_id, code_hash)
);

CREATE TABLE mfa_challenges (
    token_hash BLOB PRIMARY KEY,
    account_id BLOB NOT NULL REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    failures   INTEGER NOT NULL,
    used_at    BIGINT
);

-- When the session proved a second factor (at sign-in, or by turning one on); NULL if it has not.
ALTER TABLE sessions ADD COLUMN mfa_at BIGINT;
-- When the session may add a first second factor: it was opened by an emailed link (activation,
-- invitation) or has opened a set-up link since. A password alone never lets anyone add a factor.
ALTER TABLE sessions ADD COLUMN setup_ok_at BIGINT;

-- Single-use links, emailed on request, that let the session opening them add a first factor.
CREATE TABLE mfa_setup_links (
    token_hash BLOB PRIMARY KEY,
    account_id BLOB NOT NULL REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- Browsers an account has signed in from (a hash of a long-lived device cookie): a sign-in from
-- any other is emailed to the holder.
CREATE TABLE known_devices (
    account_id    BLOB NOT NULL REFERENCES accounts (id),
    device_hash   BLOB NOT NULL,
    first_seen_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, device_hash)
);
