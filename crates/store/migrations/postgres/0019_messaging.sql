-- Secure messaging (issue 16). Subjects, messages and internal notes are sealed under the
-- patient's records key; only what queries need stays clear: ids, times, states, who.

-- Each practice's messaging set-up. No row: messaging is off.
CREATE TABLE messaging_settings (
    practice_id  UUID PRIMARY KEY REFERENCES practices (id),
    messaging_on BOOLEAN NOT NULL,
    after_hours  TEXT NOT NULL,
    fee_notice   TEXT NOT NULL,
    reply_days   INTEGER NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- The practice's clinicians who take messages addressed to them by name.
CREATE TABLE messaging_clinicians (
    practice_id UUID NOT NULL REFERENCES practices (id),
    account_id  UUID NOT NULL REFERENCES accounts (id),
    PRIMARY KEY (practice_id, account_id)
);

CREATE TABLE message_threads (
    id               UUID PRIMARY KEY,
    practice_id      UUID NOT NULL REFERENCES practices (id),
    patient_id       UUID NOT NULL REFERENCES patients (id),
    team             TEXT CHECK (team IN ('reception', 'nurses')),
    clinician_id     UUID REFERENCES accounts (id),
    subject          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    assigned_to      UUID REFERENCES accounts (id),
    started_by       UUID REFERENCES accounts (id),
    request_key      TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    last_message_at  BIGINT NOT NULL,
    patient_read_at  BIGINT,
    practice_read_at BIGINT,
    CHECK ((team IS NULL) <> (clinician_id IS NULL)),
    -- A form sent twice starts one conversation.
    UNIQUE (patient_id, request_key)
);
CREATE INDEX message_threads_by_practice ON message_threads (practice_id, last_message_at);
CREATE INDEX message_threads_by_patient ON message_threads (patient_id, last_message_at);

CREATE TABLE messages (
    id            UUID PRIMARY KEY,
    thread_id     UUID NOT NULL REFERENCES message_threads (id),
    author_id     UUID REFERENCES accounts (id),
    from_practice BOOLEAN NOT NULL,
    internal      BOOLEAN NOT NULL,
    body          TEXT NOT NULL,
    document_id   UUID REFERENCES documents (id),
    created_at    BIGINT NOT NULL
);
CREATE INDEX messages_by_thread ON messages (thread_id, created_at);
