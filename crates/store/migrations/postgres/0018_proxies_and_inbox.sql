-- Proxy access and the in-portal inbox (issue 16).

-- A proxy's right to act for one patient, set up by a practice after checking identity.
-- Whether it is live is decided by the policy on every request, from these facts and the
-- patient's date of birth against the practice's cut-off age: no job ends a link.
CREATE TABLE proxies (
    id               UUID PRIMARY KEY,
    practice_id      UUID NOT NULL REFERENCES practices (id),
    patient_id       UUID NOT NULL REFERENCES patients (id),
    proxy_account_id UUID NOT NULL REFERENCES accounts (id),
    relationship     TEXT NOT NULL CHECK (relationship IN ('parent', 'carer', 'legal_representative', 'other')),
    scopes           TEXT NOT NULL,
    starts_at        BIGINT NOT NULL,
    expires_at       BIGINT,
    needs_acceptance BOOLEAN NOT NULL,
    accepted_at      BIGINT,
    identity_check   TEXT NOT NULL,
    created_by       UUID NOT NULL REFERENCES accounts (id),
    created_at       BIGINT NOT NULL,
    revoked_at       BIGINT,
    revoked_by       UUID REFERENCES accounts (id)
);
-- One open link per patient and proxy: setting one up again replaces it.
CREATE UNIQUE INDEX proxies_one_open ON proxies (patient_id, proxy_account_id) WHERE revoked_at IS NULL;
CREATE INDEX proxies_by_account ON proxies (proxy_account_id);

-- Whose record a session has open: the account's own (NULL) or a person it acts for.
ALTER TABLE sessions ADD COLUMN acting_for UUID REFERENCES patients (id);

-- Each practice's age at which a child's record becomes the young person's own: 12, 14 or
-- 16. No row: 14.
CREATE TABLE proxy_rules (
    practice_id UUID PRIMARY KEY REFERENCES practices (id),
    cutoff_age  INTEGER NOT NULL CHECK (cutoff_age IN (12, 14, 16)),
    updated_at  BIGINT NOT NULL
);

-- The in-portal inbox: every notice Tiaki gives a person. Titles are fixed wordings with no
-- health content ("A reply from your practice"); the link is a path inside the portal.
CREATE TABLE notices (
    id         UUID PRIMARY KEY,
    account_id UUID NOT NULL REFERENCES accounts (id),
    patient_id UUID REFERENCES patients (id),
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    link       TEXT,
    created_at BIGINT NOT NULL,
    read_at    BIGINT
);
CREATE INDEX notices_by_account ON notices (account_id, created_at);
CREATE INDEX notices_unread ON notices (account_id) WHERE read_at IS NULL;

-- Whether a kind of notice is also emailed (no row: the default, on). Security notices are
-- always emailed and have no row.
CREATE TABLE notice_prefs (
    account_id UUID NOT NULL REFERENCES accounts (id),
    kind       TEXT NOT NULL,
    email      BOOLEAN NOT NULL,
    PRIMARY KEY (account_id, kind)
);
