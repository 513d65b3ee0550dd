"""Intake: agency files and API posts become batches of records; the register."""
