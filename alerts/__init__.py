"""Alerts: from rules and device health to the right people, once, with escalation."""
