-- Foundation: accounts, practices, staff, patients, enrolments, invitations, sessions, mail outbox.
-- Times are whole seconds since the Unix epoch (UTC) on both engines; ids are random UUIDs.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE accounts (
    id            UUID PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('patient', 'staff', 'operator')),
    email         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

CREATE TABLE practices (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL,
    hpi_facility_id TEXT NOT NULL UNIQUE,
    region          TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE staff (
    account_id  UUID PRIMARY KEY REFERENCES accounts (id),
    practice_id UUID NOT NULL REFERENCES practices (id),
    role        TEXT NOT NULL CHECK (role IN ('gp', 'nurse', 'admin', 'privacy_officer')),
    created_at  BIGINT NOT NULL
);
CREATE INDEX staff_by_practice ON staff (practice_id);

CREATE TABLE patients (
    id            UUID PRIMARY KEY,
    account_id    UUID NOT NULL UNIQUE REFERENCES accounts (id),
    nhi           TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE enrolments (
    patient_id  UUID NOT NULL REFERENCES patients (id),
    practice_id UUID NOT NULL REFERENCES practices (id),
    enrolled_at BIGINT NOT NULL,
    enrolled_by UUID REFERENCES accounts (id),
    PRIMARY KEY (patient_id, practice_id)
);
CREATE INDEX enrolments_by_practice ON enrolments (practice_id);

-- Single-use links: patient activation, staff and operator invitations, first-start set-up.
-- Only a SHA-256 of the token is kept.
CREATE TABLE invitations (
    id         UUID PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('activate_patient', 'join_staff', 'join_operator', 'first_operator')),
    account_id UUID REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX invitations_by_account ON invitations (account_id);

-- Server-side sessions. Only a SHA-256 of the bearer token is kept.
CREATE TABLE sessions (
    id                  UUID PRIMARY KEY,
    token_hash          BYTEA NOT NULL UNIQUE,
    account_id          UUID NOT NULL REFERENCES accounts (id),
    created_at          BIGINT NOT NULL,
    last_seen_at        BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    ip                  TEXT NOT NULL,
    user_agent          TEXT NOT NULL,
    ended_at            BIGINT
);
CREATE INDEX sessions_by_account ON sessions (account_id);

-- Mail waits here, written in the same transaction as whatever caused it, until a sender
-- delivers it. The body is cleared once sent (it may hold a single-use link).
CREATE TABLE outbox (
    id              UUID PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (sent_at, next_attempt_at);
