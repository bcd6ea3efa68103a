-- The access log: one row per access per patient, sequenced into an RFC 9162 Merkle tree.
-- Ids are stored as text exactly as they are committed to in the leaf.

CREATE TABLE audit_events (
    id             TEXT PRIMARY KEY,
    seq            BIGINT UNIQUE,          -- leaf index, set by the sequencer
    leaf_hash      BYTEA,
    at_ms          BIGINT NOT NULL,
    actor_account  TEXT,
    actor_role     TEXT NOT NULL,
    actor_practice TEXT,
    session_id     TEXT,
    ip             TEXT NOT NULL,
    user_agent     TEXT NOT NULL,
    on_behalf      TEXT,
    action         TEXT NOT NULL,
    object_type    TEXT NOT NULL,
    object_id      TEXT NOT NULL,
    patient_id     TEXT,
    practice_id    TEXT,
    outcome        TEXT NOT NULL,
    request_id     TEXT NOT NULL
);
CREATE INDEX audit_events_unsequenced ON audit_events (at_ms, id) WHERE seq IS NULL;
CREATE INDEX audit_events_by_patient ON audit_events (patient_id, at_ms);
CREATE INDEX audit_events_by_time ON audit_events (at_ms);

-- Hashes of perfect subtrees (level 0: leaves), so proofs need O(log n) look-ups.
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Signed checkpoints (C2SP tlog-checkpoint notes).
CREATE TABLE audit_checkpoints (
    size       BIGINT PRIMARY KEY,
    root       BYTEA NOT NULL,
    note       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Witness cosignatures (C2SP tlog-cosignature), verified before they are stored.
CREATE TABLE audit_cosignatures (
    checkpoint_size BIGINT NOT NULL REFERENCES audit_checkpoints (size),
    witness         TEXT NOT NULL,
    signature_line  TEXT NOT NULL,
    signed_at       BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    PRIMARY KEY (checkpoint_size, witness)
);

-- Singleton jobs (sequencing, checkpoints) hold a lease so one node at a time runs them.
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  BIGINT NOT NULL
);
