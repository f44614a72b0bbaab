-- Idempotency tokens are removed once past their window (the janitor's
-- ExpireIdempotencyTokens), oldest first: before, every token stayed.
CREATE INDEX idempotency_tokens_by_age ON idempotency_tokens (created_at);
