"""Machinery both emulated services share: clock, faults, TLS, stats, control routes."""
