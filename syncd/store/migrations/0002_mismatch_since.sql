-- When a listing was first seen showing neither its target nor what syncd last confirmed; drift is
-- repaired only when that persists past the grace period (a sale's notification may simply be late).
ALTER TABLE listings ADD COLUMN mismatch_since TEXT;
