-- A practice may require its patients to use a second factor (issue 3). Patients of such a
-- practice who have none are asked, on every page, to set one up until they do.
ALTER TABLE practices ADD COLUMN patients_need_mfa BOOLEAN NOT NULL DEFAULT FALSE;

-- Whether a session's second factor was a passkey: when the operator requires passkeys of
-- operators and practice admins (a platform setting), their other sessions reach only the
-- sign-in security page.
ALTER TABLE sessions ADD COLUMN mfa_passkey BOOLEAN NOT NULL DEFAULT FALSE;
