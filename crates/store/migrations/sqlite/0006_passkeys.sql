-- Passkeys (WebAuthn): several per account, each named by its holder. The credential (public
-- key, counter, flags) is webauthn-rs's own record, stored as JSON.
CREATE TABLE passkeys (
    id           BLOB PRIMARY KEY,
    account_id   BLOB NOT NULL REFERENCES accounts (id),
    credential_id BLOB NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    credential   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_by_account ON passkeys (account_id);

-- WebAuthn ceremonies in progress (the server's half of a challenge), found by the hash of a
-- random token the page posts back, used once and short-lived: a replayed or stale assertion
-- finds nothing.
CREATE TABLE webauthn_ceremonies (
    token_hash BLOB PRIMARY KEY,
    account_id BLOB REFERENCES accounts (id),
    purpose    TEXT NOT NULL CHECK (purpose IN ('register', 'sign_in', 'second_factor', 'confirm')),
    state      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
