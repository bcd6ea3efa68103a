-- Incidents (issue 18): an incident, its revisions (indicators, the log's tree size and root the
-- scope was computed from, the scope itself), what was done about it, and its notices.

-- Finding an attacker's events by account, system or session without reading the whole log.
CREATE INDEX audit_events_by_actor ON audit_events (actor_account, seq) WHERE actor_account IS NOT NULL;
CREATE INDEX audit_events_by_session ON audit_events (session_id, seq) WHERE session_id IS NOT NULL;

CREATE TABLE incidents (
    id                   TEXT PRIMARY KEY,
    title                TEXT NOT NULL,
    description          TEXT NOT NULL,
    discovered_at        BIGINT NOT NULL,
    declared_at          BIGINT NOT NULL,
    declared_by          TEXT NOT NULL,
    from_alert           TEXT,
    steps_taken          TEXT NOT NULL,
    commissioner_told_at BIGINT,
    closed_at            BIGINT
);

-- Each revision: the indicators, and the signed checkpoint (tree size, root, note) whose events
-- the scope was computed from, so anyone can compute it again and compare the digest.
CREATE TABLE incident_revisions (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    revision    BIGINT NOT NULL,
    indicators  TEXT NOT NULL,
    note        TEXT NOT NULL,
    tree_size   BIGINT NOT NULL,
    root        TEXT NOT NULL,
    checkpoint  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    confirmed   BIGINT NOT NULL,
    possible    BIGINT NOT NULL,
    objects     BIGINT NOT NULL,
    events      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (incident_id, revision)
);

-- A revision's scope: each patient confirmed or possibly affected (everyone else is not), and
-- why (the first matching event and the indicator it matched).
CREATE TABLE incident_patients (
    incident_id TEXT NOT NULL,
    revision    BIGINT NOT NULL,
    patient_id  TEXT NOT NULL,
    class       TEXT NOT NULL,
    why         TEXT NOT NULL,
    PRIMARY KEY (incident_id, revision, patient_id)
);
CREATE INDEX incident_patients_by_patient ON incident_patients (patient_id, incident_id, revision);

-- What of theirs was reached: each document, record item or record, with its category, date
-- and controlling organisation (who must be told).
CREATE TABLE incident_objects (
    incident_id     TEXT NOT NULL,
    revision        BIGINT NOT NULL,
    patient_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    object_id       TEXT NOT NULL,
    class           TEXT NOT NULL,
    category        TEXT NOT NULL,
    dated           TEXT,
    controller_id   TEXT NOT NULL,
    controller_name TEXT NOT NULL,
    first_seq       BIGINT NOT NULL,
    PRIMARY KEY (incident_id, revision, patient_id, kind, object_id)
);

-- What was done about an incident (sessions ended, new passwords required, systems suspended,
-- modules switched off, campaigns started), with who, why and how many.
CREATE TABLE incident_actions (
    id          TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    at          BIGINT NOT NULL,
    by_account  TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    affected    BIGINT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX incident_actions_by_incident ON incident_actions (incident_id, at);

-- A notification campaign from one revision: notices (first ones) or corrections, released in
-- stages (a percentage) and sent at most `per_minute` a minute.
CREATE TABLE incident_campaigns (
    id               TEXT PRIMARY KEY,
    incident_id      TEXT NOT NULL REFERENCES incidents (id),
    revision         BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    per_minute       BIGINT NOT NULL,
    released_percent BIGINT NOT NULL,
    total            BIGINT NOT NULL
);

-- One notice to one person. States: queued; claimed (a sender holds it and has not begun the
-- message's last step, so after a crash it is sent again); sending (committed just before the
-- server is told to deliver: never sent again, listed as unconfirmed until the server answers);
-- sent; failed (refused by the server: the practice reaches them another way); cancelled (a
-- later revision took them out before it went). Only a hash of the reference code is kept; the
-- body is cleared once it has gone.
CREATE TABLE incident_notices (
    id          TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES incident_campaigns (id),
    incident_id TEXT NOT NULL,
    revision    BIGINT NOT NULL,
    patient_id  TEXT NOT NULL,
    class       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    position    BIGINT NOT NULL,
    code_hash   BLOB NOT NULL UNIQUE,
    recipient   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL,
    holder      TEXT,
    lease_until BIGINT,
    attempts    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    sent_at     BIGINT,
    error       TEXT,
    UNIQUE (campaign_id, patient_id)
);
CREATE INDEX incident_notices_due ON incident_notices (state, campaign_id, position);
-- At most one notice waiting for each person of an incident: two campaigns started at once (a
-- double click, two leads) cannot both queue them; a new campaign cancels what it replaces first.
CREATE UNIQUE INDEX incident_notices_one_waiting ON incident_notices (incident_id, patient_id)
    WHERE state IN ('queued', 'claimed');
CREATE INDEX incident_notices_by_patient ON incident_notices (incident_id, patient_id);
