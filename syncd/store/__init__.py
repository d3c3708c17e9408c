"""SQLite: schema and migrations, the single writer, and read queries."""
