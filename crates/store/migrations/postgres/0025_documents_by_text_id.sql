-- An incident's scope joins each filed event (whose object is text: not every object is a UUID)
-- to the document it names. Comparing as text with this index needs no cast of the event's
-- value, which had to be guarded by a pattern match on every event (a text that is not a UUID
-- would fail the cast and the whole scope with it).
CREATE INDEX documents_by_text_id ON documents ((id::text));
