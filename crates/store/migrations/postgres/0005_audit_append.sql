-- Events take their leaf index when they are written: the group-commit writer numbers each
-- batch on from the last event while holding a lock on the table (so several app nodes append
-- one after another, without gaps), and nothing rewrites an event afterwards. The tree builder
-- hashes new events into `audit_nodes` (level 0 holds each leaf's hash) and files them under
-- their patient in `audit_by_patient`, whose random keys are kept out of the append path.
ALTER TABLE audit_events DROP COLUMN leaf_hash;

UPDATE audit_events e
SET seq = b.base + n.rn - 1
FROM (SELECT COALESCE(MAX(seq) + 1, 0) AS base FROM audit_events) b,
     (SELECT id, ROW_NUMBER() OVER (ORDER BY at_ms, id) AS rn FROM audit_events WHERE seq IS NULL) n
WHERE e.id = n.id;

ALTER TABLE audit_events ALTER COLUMN seq SET NOT NULL;
DROP INDEX audit_events_unsequenced;
DROP INDEX audit_events_by_patient;

-- Each patient's events, filed by the tree builder in the same transaction as their leaves, so
-- it holds exactly the events below the tree size; newer ones are found by a short scan.
CREATE TABLE audit_by_patient (
    patient_id TEXT NOT NULL,
    at_ms      BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (patient_id, at_ms, seq)
);

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
