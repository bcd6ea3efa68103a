-- Containment and the security console (issue 17).

-- What an operator did about an alert: acknowledged it, or lifted what its response did (the
-- account unlocked, the system resumed), with who and why.
ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT;
ALTER TABLE alerts ADD COLUMN lifted_at BIGINT;
ALTER TABLE alerts ADD COLUMN lifted_by TEXT;
ALTER TABLE alerts ADD COLUMN note TEXT;

-- A session a detector asked to prove its second factor again: until it does (mfa_at later than
-- this), it reaches nothing but the second-factor page.
ALTER TABLE sessions ADD COLUMN step_up_at BIGINT;

-- A session a detector suspended: refused on every node until an operator lifts it (or it expires).
ALTER TABLE sessions ADD COLUMN suspended_at BIGINT;

-- An organisation's system a detector (or an operator) suspended: refused until resumed.
ALTER TABLE api_clients ADD COLUMN suspended_at BIGINT;

-- The kill switch: a module switched off for one practice (its id) or for everyone ('*').
CREATE TABLE module_switches (
    module     TEXT NOT NULL,
    scope      TEXT NOT NULL,
    off_at     BIGINT NOT NULL,
    off_by     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    PRIMARY KEY (module, scope)
);

-- Honeytokens: canary patients, documents and record items that no legitimate path reaches.
-- Any access to one is an attack (or an insider browsing the database).
CREATE TABLE honeytokens (
    object_id  TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- What operators did at the security console, with their reasons (the access log holds the
-- tamper-evident event; the reason, free text, is kept here beside it).
CREATE TABLE security_actions (
    id       TEXT PRIMARY KEY,
    at       BIGINT NOT NULL,
    by_account TEXT NOT NULL,
    action   TEXT NOT NULL,
    object   TEXT NOT NULL,
    reason   TEXT NOT NULL
);
CREATE INDEX security_actions_by_time ON security_actions (at);

-- How much each organisation's system did per hour (distinct patients), kept for a week: its
-- usual volume, which the client-volume rule compares the current hour with.
CREATE TABLE detection_volume (
    subject      TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    seen         BIGINT NOT NULL,
    PRIMARY KEY (subject, window_start)
);

-- Tallies (how many, not how many distinct: documents read a minute), one row per rule,
-- subject and window, added to in one statement. Marks and tallies of old windows are pruned by
-- the job queue (by window, hence the index).
CREATE TABLE detection_tallies (
    rule         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (rule, subject, window_start)
);
CREATE INDEX detection_tallies_by_window ON detection_tallies (window_start);
CREATE INDEX detection_marks_by_window ON detection_marks (window_start);
