-- The access log filed by who did it (issue 18, P5: an MMH-sized incident's scope in seconds on a
-- log of 100 million events). An incident's scope reads the indicator sessions' and accounts'
-- events; in `audit_events` they lie scattered one to a page among everyone else's, so reading
-- 430,000 of them was 430,000 page reads. Here each event the scope can use (served to someone,
-- about a patient) sits beside the same session's others, with just the columns the scope reads.
-- The tree builder files them in the same transaction as their leaves and moves `audit_filed`
-- on, so the filing holds exactly the events below that mark; newer ones are read from the log.
CREATE TABLE audit_by_actor (
    actor       TEXT NOT NULL,   -- the session, or the account (or system) when there is none
    seq         BIGINT NOT NULL,
    account     TEXT,            -- the account (or system) that acted
    at_ms       BIGINT NOT NULL,
    module      TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    patient_id  TEXT NOT NULL,
    practice_id TEXT,
    PRIMARY KEY (actor, seq)
) WITHOUT ROWID;

-- The sessions (and, for what it did without one, the account itself) each account acted in.
CREATE TABLE audit_actor_keys (
    account TEXT NOT NULL,
    actor   TEXT NOT NULL,
    PRIMARY KEY (account, actor)
) WITHOUT ROWID;

CREATE TABLE audit_filed (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    below     BIGINT NOT NULL   -- every event with a leaf index below this is filed
);

INSERT INTO audit_by_actor (actor, seq, account, at_ms, module, action, object_type, object_id, patient_id, practice_id)
SELECT COALESCE(session_id, actor_account), seq, actor_account, at_ms, module, action, object_type, object_id,
       patient_id, practice_id
FROM audit_events
WHERE outcome = 'allowed' AND patient_id IS NOT NULL AND COALESCE(session_id, actor_account) IS NOT NULL
  AND seq < (SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_nodes WHERE level = 0);

INSERT INTO audit_actor_keys (account, actor)
SELECT DISTINCT actor_account, COALESCE(session_id, actor_account)
FROM audit_events
WHERE outcome = 'allowed' AND patient_id IS NOT NULL AND actor_account IS NOT NULL
  AND seq < (SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_nodes WHERE level = 0);

INSERT INTO audit_filed (singleton, below)
SELECT 1, COALESCE(MAX(idx) + 1, 0) FROM audit_nodes WHERE level = 0;

-- The filing replaces the partial indexes of migration 0022, which found the same events one
-- page read at a time (and cost every append two more index entries).
DROP INDEX audit_events_by_actor;
DROP INDEX audit_events_by_session;
