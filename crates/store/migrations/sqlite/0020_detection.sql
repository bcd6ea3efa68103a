-- Detection (issue 17): what the detectors have counted, shared by every node through the
-- database, and the alerts they raised.

-- One row per rule, subject (a session), window and object (a document or patient id): the
-- subject touched the object in that window. A detector's picture is the count of its rows.
-- Only ids: no names, no health data.
CREATE TABLE detection_marks (
    rule         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    object       TEXT NOT NULL,
    PRIMARY KEY (rule, subject, window_start, object)
);

-- An alert: once per rule, subject and window, with what was done about it.
CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    rule            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    subject         TEXT NOT NULL,
    account_id      TEXT,
    response        TEXT NOT NULL,
    seen            BIGINT NOT NULL,
    window_start    BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    acknowledged_at BIGINT,
    UNIQUE (rule, subject, window_start)
);
CREATE INDEX alerts_by_time ON alerts (created_at);
