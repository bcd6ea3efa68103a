-- Events take their leaf index when they are written: the group-commit writer, which holds the
-- database's write lock, numbers each batch on from the last event. The table is keyed by that
-- number (SQLite's rowid), so an append only ever writes at the end of the table and of its
-- indexes; nothing rewrites an event afterwards. The tree builder hashes new events into
-- `audit_nodes` (level 0 holds each leaf's hash) and files them under their patient in
-- `audit_by_patient`, whose random keys would otherwise cost every append a page write.
CREATE TABLE audit_events_by_seq (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
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

INSERT INTO audit_events_by_seq (seq, id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, user_agent,
                                 on_behalf, action, object_type, object_id, patient_id, practice_id, outcome, request_id)
SELECT seq, id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, user_agent,
       on_behalf, action, object_type, object_id, patient_id, practice_id, outcome, request_id
FROM audit_events WHERE seq IS NOT NULL;

-- Events written but not yet sequenced follow, in the order the old sequencer would have used.
INSERT INTO audit_events_by_seq (seq, id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, user_agent,
                                 on_behalf, action, object_type, object_id, patient_id, practice_id, outcome, request_id)
SELECT (SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_events) + ROW_NUMBER() OVER (ORDER BY at_ms, id) - 1,
       id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, user_agent,
       on_behalf, action, object_type, object_id, patient_id, practice_id, outcome, request_id
FROM audit_events WHERE seq IS NULL;

DROP TABLE audit_events;
ALTER TABLE audit_events_by_seq RENAME TO audit_events;
CREATE INDEX audit_events_by_time ON audit_events (at_ms);

-- Each patient's events, filed by the tree builder in the same transaction as their leaves, so
-- it holds exactly the events below the tree size; newer ones are found by a short scan.
CREATE TABLE audit_by_patient (
    patient_id TEXT NOT NULL,
    at_ms      BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (patient_id, at_ms, seq)
) WITHOUT ROWID;

INSERT INTO audit_by_patient (patient_id, at_ms, seq)
SELECT patient_id, at_ms, seq FROM audit_events
WHERE patient_id IS NOT NULL AND seq < (SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_nodes WHERE level = 0);

-- Retention: events older than the retention period (at least ten years) are removed from the
-- start of the log, up to a signed checkpoint. The tree's node hashes stay (they identify no one),
-- so the checkpoint there still anchors the remaining events, and `tiaki audit verify` can tell
-- a removal under the retention rule from a rewrite.
CREATE TABLE audit_pruned (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    below     BIGINT NOT NULL,   -- events with a leaf index below this were removed
    cutoff_ms BIGINT NOT NULL,   -- every one of them was written before this time
    pruned_at BIGINT NOT NULL
);
