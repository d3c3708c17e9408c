"""One adapter per platform behind the `Channel` Protocol, plus the shared HTTP layer."""
