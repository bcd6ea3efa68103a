-- Health documents (DESIGN §5): per-patient keys wrapped by the master key, one row per
-- document with its wrapped data key and a random blob key, blob intents for crash safety,
-- and the API clients organisations push documents with.

-- A patient's keys, versioned. `wrapped` is the key wrapped by the master key `master_key_id`;
-- it is cleared when the key is destroyed (erasure crypto-shreds every document of theirs).
CREATE TABLE patient_keys (
    patient_id    BLOB NOT NULL REFERENCES patients (id),
    version       INTEGER NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped       BLOB,
    created_at    BIGINT NOT NULL,
    destroyed_at  BIGINT,
    PRIMARY KEY (patient_id, version)
);
CREATE INDEX patient_keys_by_master ON patient_keys (master_key_id);

-- Systems that push documents: a practice's (scoped to its enrolled patients) or another
-- organisation's, such as a hospital (scoped to patients of practices that agreed to receive
-- its documents). Only a SHA-256 of the secret is kept.
CREATE TABLE api_clients (
    id            BLOB PRIMARY KEY,
    label         TEXT NOT NULL,
    org_id        TEXT NOT NULL,
    org_name      TEXT NOT NULL,
    practice_id   BLOB REFERENCES practices (id),
    secret_hash   BLOB NOT NULL,
    created_at    BIGINT NOT NULL,
    rotated_at    BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_clients_by_org ON api_clients (org_id);

-- A practice agrees to receive documents from an organisation (by its HPI id).
CREATE TABLE document_agreements (
    practice_id BLOB NOT NULL REFERENCES practices (id),
    org_id      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (practice_id, org_id)
);
CREATE INDEX document_agreements_by_org ON document_agreements (org_id);

CREATE TABLE documents (
    id              BLOB PRIMARY KEY,
    patient_id      BLOB NOT NULL REFERENCES patients (id),
    version         INTEGER NOT NULL,
    category        TEXT NOT NULL CHECK (category IN ('discharge_summary', 'referral', 'clinic_letter', 'result', 'correspondence', 'patient_upload')),
    title           TEXT NOT NULL,
    filename        TEXT NOT NULL,
    media_type      TEXT NOT NULL,
    size            BIGINT NOT NULL,
    blob_key        TEXT NOT NULL UNIQUE,
    wrapped_key     BLOB NOT NULL,
    key_version     INTEGER NOT NULL,
    aad_practice    TEXT NOT NULL,
    clinical_date   TEXT,
    author          TEXT,
    source_org_id   TEXT NOT NULL,
    source_org_name TEXT NOT NULL,
    controller_id   TEXT NOT NULL,
    controller_name TEXT NOT NULL,
    source_ref      TEXT,
    pushed_by_practice BLOB REFERENCES practices (id),
    pushed_by_client   BLOB REFERENCES api_clients (id),
    uploaded_by     BLOB REFERENCES accounts (id),
    created_at      BIGINT NOT NULL,
    hidden_at       BIGINT,
    withdrawn_at    BIGINT,
    deleted_at      BIGINT,
    UNIQUE (source_org_id, source_ref)
);
CREATE INDEX documents_by_patient ON documents (patient_id, created_at);
CREATE INDEX documents_by_pusher ON documents (pushed_by_practice, patient_id);

-- A blob that may exist without a live document: written before an upload starts (removed in
-- the transaction that commits the document) and when a document is deleted. The sweeper
-- deletes the blobs of old intents that no live document uses.
CREATE TABLE blob_intents (
    blob_key   TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
