"""Outbox workers: take due pushes, call the channel, record the outcome through the writer."""
