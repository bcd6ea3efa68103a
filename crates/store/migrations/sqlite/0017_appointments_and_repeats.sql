-- Appointments and repeat prescriptions (issue 15). Booking reasons, patients' notes, the
-- practice's reasons and medication names are sealed under the patient's records key; only
-- what queries need stays clear: ids, times, states, the practice's own set-up.

-- Each practice's switches and rules for online booking and repeats. No row: the defaults.
CREATE TABLE practice_services (
    practice_id         BLOB PRIMARY KEY REFERENCES practices (id),
    booking_on          BOOLEAN NOT NULL,
    window_days         INTEGER NOT NULL,
    cancel_cutoff_mins  INTEGER NOT NULL,
    max_future          INTEGER NOT NULL,
    ask_reason          BOOLEAN NOT NULL,
    repeats_on          BOOLEAN NOT NULL,
    repeat_fee_cents    INTEGER NOT NULL,
    repeat_working_days INTEGER NOT NULL,
    pharmacies          TEXT NOT NULL,
    updated_at          BIGINT NOT NULL
);

-- A clinician's book at one location (FHIR Schedule).
CREATE TABLE schedules (
    id          BLOB PRIMARY KEY,
    practice_id BLOB NOT NULL REFERENCES practices (id),
    clinician   TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('gp', 'nurse')),
    location    TEXT NOT NULL,
    online      BOOLEAN NOT NULL,
    active      BOOLEAN NOT NULL,
    source_id   TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (practice_id, source_id)
);

CREATE TABLE appointment_types (
    id          BLOB PRIMARY KEY,
    practice_id BLOB NOT NULL REFERENCES practices (id),
    name        TEXT NOT NULL,
    minutes     INTEGER NOT NULL,
    modality    TEXT NOT NULL CHECK (modality IN ('in_person', 'phone', 'video')),
    online      BOOLEAN NOT NULL,
    active      BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (practice_id, name)
);

-- Weekly templates: on this weekday (1 Monday … 7 Sunday), from start to end (minutes after
-- local midnight), slots of this type one after another.
CREATE TABLE schedule_templates (
    id           BLOB PRIMARY KEY,
    practice_id  BLOB NOT NULL REFERENCES practices (id),
    schedule_id  BLOB NOT NULL REFERENCES schedules (id),
    type_id      BLOB NOT NULL REFERENCES appointment_types (id),
    weekday      INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_minute INTEGER NOT NULL,
    end_minute   INTEGER NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Days the practice (or one book) is closed: leave, regional anniversary days, training.
-- National public holidays are closed without a row.
CREATE TABLE closures (
    id          BLOB PRIMARY KEY,
    practice_id BLOB NOT NULL REFERENCES practices (id),
    schedule_id BLOB REFERENCES schedules (id),
    first_day   TEXT NOT NULL,
    last_day    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE slots (
    id            BLOB PRIMARY KEY,
    practice_id   BLOB NOT NULL REFERENCES practices (id),
    schedule_id   BLOB NOT NULL REFERENCES schedules (id),
    type_id       BLOB NOT NULL REFERENCES appointment_types (id),
    starts_at     BIGINT NOT NULL,
    ends_at       BIGINT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('free', 'booked', 'busy', 'blocked')),
    from_template BOOLEAN NOT NULL,
    source_id     TEXT,
    updated_at    BIGINT NOT NULL,
    UNIQUE (schedule_id, starts_at),
    UNIQUE (practice_id, source_id)
);
CREATE INDEX slots_by_time ON slots (practice_id, starts_at);

CREATE TABLE appointments (
    id            BLOB PRIMARY KEY,
    practice_id   BLOB NOT NULL REFERENCES practices (id),
    patient_id    BLOB NOT NULL REFERENCES patients (id),
    slot_id       BLOB NOT NULL REFERENCES slots (id),
    schedule_id   BLOB NOT NULL REFERENCES schedules (id),
    type_id       BLOB NOT NULL REFERENCES appointment_types (id),
    starts_at     BIGINT NOT NULL,
    ends_at       BIGINT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('booked', 'cancelled', 'attended', 'did_not_attend')),
    reason        TEXT,
    booked_by     BLOB REFERENCES accounts (id),
    cancelled_by  BLOB REFERENCES accounts (id),
    cancel_reason TEXT,
    cancelled_at  BIGINT,
    reminded_at   BIGINT,
    source_id     TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (practice_id, source_id)
);
-- A slot is taken at most once, whatever races to take it.
CREATE UNIQUE INDEX appointments_one_per_slot ON appointments (slot_id) WHERE status <> 'cancelled';
CREATE INDEX appointments_by_patient ON appointments (patient_id, starts_at);
CREATE INDEX appointments_by_time ON appointments (status, starts_at);

-- A patient's long-term list: medications their practice marked repeat-eligible (from the
-- health record, or entered by the practice), or excluded from online requests.
CREATE TABLE repeat_medications (
    id          BLOB PRIMARY KEY,
    practice_id BLOB NOT NULL REFERENCES practices (id),
    patient_id  BLOB NOT NULL REFERENCES patients (id),
    record_id   BLOB,
    name        TEXT NOT NULL,
    excluded    BOOLEAN NOT NULL,
    last_issued TEXT,
    active      BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (patient_id, record_id)
);
CREATE INDEX repeat_medications_by_patient ON repeat_medications (patient_id);

CREATE TABLE repeat_requests (
    id             BLOB PRIMARY KEY,
    practice_id    BLOB NOT NULL REFERENCES practices (id),
    patient_id     BLOB NOT NULL REFERENCES patients (id),
    status         TEXT NOT NULL CHECK (status IN ('requested', 'in_review', 'approved', 'declined')),
    collection     TEXT NOT NULL CHECK (collection IN ('practice', 'pharmacy')),
    pharmacy       TEXT,
    note           TEXT,
    fee_cents      INTEGER NOT NULL,
    ready_by       TEXT NOT NULL,
    request_key    TEXT NOT NULL,
    requested_by   BLOB REFERENCES accounts (id),
    reviewed_by    BLOB REFERENCES accounts (id),
    decided_by     BLOB REFERENCES accounts (id),
    outcome        TEXT CHECK (outcome IN ('sent_to_pharmacy', 'ready_to_collect')),
    decline_reason TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (patient_id, request_key)
);
CREATE INDEX repeat_requests_queue ON repeat_requests (practice_id, status, created_at);
CREATE INDEX repeat_requests_by_patient ON repeat_requests (patient_id, created_at);

CREATE TABLE repeat_request_items (
    request_id    BLOB NOT NULL REFERENCES repeat_requests (id),
    medication_id BLOB NOT NULL REFERENCES repeat_medications (id),
    patient_id    BLOB NOT NULL REFERENCES patients (id),
    open          BOOLEAN NOT NULL,
    PRIMARY KEY (request_id, medication_id)
);
-- No second open request for the same medication.
CREATE UNIQUE INDEX repeat_items_one_open ON repeat_request_items (medication_id) WHERE open;
