"""Scenario suites shipped with the harness (spec files only)."""
