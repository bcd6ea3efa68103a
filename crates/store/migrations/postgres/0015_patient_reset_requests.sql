-- A patient's second factors are reset by an admin of their own practice; an operator may do it
-- only with a second operator's approval (issue 13): one asks, with the identity check recorded,
-- and another (never the same) approves within a day.
CREATE TABLE patient_reset_requests (
    id           UUID PRIMARY KEY,
    account_id   UUID NOT NULL REFERENCES accounts (id),
    requested_by UUID NOT NULL REFERENCES accounts (id),
    checked      TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    approved_by  UUID REFERENCES accounts (id),
    approved_at  BIGINT
);
CREATE INDEX patient_reset_requests_open ON patient_reset_requests (expires_at);
