-- Enrolment cannot capture an identity (issue 13). When an NHI already has an account, another
-- practice's enrolment is only a request: nothing of that practice reaches the account until its
-- holder accepts. The practice is told the same thing whether the name and date of birth it
-- gave matched the record or not (identity_matched, never shown to it); only a matching request
-- is put to the account holder.
CREATE TABLE enrolment_requests (
    patient_id       UUID NOT NULL REFERENCES patients (id),
    practice_id      UUID NOT NULL REFERENCES practices (id),
    requested_by     UUID REFERENCES accounts (id),
    requested_at     BIGINT NOT NULL,
    identity_matched BOOLEAN NOT NULL,
    answered_at      BIGINT,
    accepted         BOOLEAN,
    PRIMARY KEY (patient_id, practice_id)
);
CREATE INDEX enrolment_requests_by_practice ON enrolment_requests (practice_id, requested_at);
