"""Screening: decisions at a decision point, batch screening jobs, the query log."""
