-- PostgreSQL's 0025 indexes documents by their id as text, for an incident scope's join. SQLite
-- keeps ids as blobs and turns the event's text into one (unhex returns NULL for a text that is
-- not hex, so nothing can fail): nothing to do here. The file keeps the engines' numbering in step.
SELECT 1;
