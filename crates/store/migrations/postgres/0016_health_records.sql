-- Health Records (issue 14): what a practice's own system sends of a patient's record, released
-- to the patient by the practice's rules. The clinical content of each item is sealed under the
-- patient's records key (AEAD; the item's id, version, patient and practice are its associated
-- data); only what queries need stays clear: ids, type, category, dates, status, release state.

-- An API client's scopes: every client may push documents (as before); sending health records
-- needs the "records" scope, given when the client is made.
ALTER TABLE api_clients ADD COLUMN scopes TEXT NOT NULL DEFAULT 'documents';

-- One records key per patient, wrapped by their patient key (a key rotation re-wraps it; an
-- erasure destroys the patient key, and with it every record).
CREATE TABLE record_keys (
    patient_id  UUID PRIMARY KEY REFERENCES patients (id),
    key_version INTEGER NOT NULL,
    wrapped_key BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE health_records (
    id             UUID PRIMARY KEY,
    patient_id     UUID NOT NULL REFERENCES patients (id),
    practice_id    UUID NOT NULL REFERENCES practices (id),
    resource_type  TEXT NOT NULL,
    source_id      TEXT NOT NULL,
    version        BIGINT NOT NULL,
    category       TEXT NOT NULL CHECK (category IN ('conditions', 'medications', 'allergies', 'immunisations', 'results', 'notes', 'recalls')),
    effective      TEXT,
    status         TEXT NOT NULL CHECK (status IN ('current', 'removed')),
    held           BOOLEAN NOT NULL,
    auto_release_at BIGINT,
    released_at    BIGINT,
    released_by    UUID REFERENCES accounts (id),
    release_note   TEXT,
    hidden_at      BIGINT,
    hidden_by      UUID REFERENCES accounts (id),
    hidden_reason  TEXT,
    group_id       UUID,
    content        TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    notified_at    BIGINT,
    UNIQUE (practice_id, resource_type, source_id)
);
CREATE INDEX health_records_by_patient ON health_records (patient_id, category, effective);
CREATE INDEX health_records_held ON health_records (practice_id, held, created_at);

-- What each practice releases to its patients. No row: the defaults (every category but
-- consultation notes; results held until a clinician releases them).
CREATE TABLE record_rules (
    practice_id       UUID PRIMARY KEY REFERENCES practices (id),
    categories        TEXT NOT NULL,
    auto_release_days INTEGER,
    updated_at        BIGINT NOT NULL
);
