-- The access log cannot be trimmed unnoticed (issue 13): the record of events removed after
-- their retention period is signed by the log's key, like its checkpoints, so a forged one fails
-- `tiaki audit verify`.
ALTER TABLE audit_pruned ADD COLUMN note TEXT;
