-- A key's console sessions, newest first: each sign-in keeps a key's
-- newest sessions and ends the rest.
CREATE INDEX console_sessions_by_key ON console_sessions (key_id, created_at);
