"""Builds: worker and tracker, per-source ledger, records, reservations, events, status."""
