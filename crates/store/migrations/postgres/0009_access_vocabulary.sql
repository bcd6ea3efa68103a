-- The access vocabulary is typed: every event names the module it happened in, as a stable
-- code, and its leaf commits to it (format 2). Events written before keep the bytes their leaves
-- committed to (format 1, which has no module); their module is filled in here from their object
-- kind, the mapping `ObjectKind::module_before_v2` keeps, and `tiaki audit verify` checks it.
ALTER TABLE audit_events ADD COLUMN module TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN format SMALLINT NOT NULL DEFAULT 1;
UPDATE audit_events SET module = CASE object_type
    WHEN 'account' THEN 'identity'
    WHEN 'session' THEN 'identity'
    WHEN 'operator_invitation' THEN 'identity'
    WHEN 'account_factors' THEN 'identity'
    WHEN 'passkey_policy' THEN 'identity'
    WHEN 'practice' THEN 'practices'
    WHEN 'staff' THEN 'practices'
    WHEN 'staff_invitation' THEN 'practices'
    WHEN 'patient_mfa_policy' THEN 'practices'
    WHEN 'enrolment' THEN 'practices'
    WHEN 'api_client' THEN 'practices'
    WHEN 'patient' THEN 'records'
    WHEN 'document' THEN 'documents'
    WHEN 'patient_key' THEN 'documents'
    WHEN 'access_history' THEN 'audit'
    WHEN 'audit_log' THEN 'audit'
    ELSE 'identity'
END;
