-- A pointer whose fetch failed waits for its next attempt (backoff) instead of being retried at once.
ALTER TABLE inbox ADD COLUMN next_attempt TEXT;
