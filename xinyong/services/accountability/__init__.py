"""Accountability: authority scorecards, rule-impact simulation, supervision grades."""
