"""Reaching staff: live fan-out to their devices (alerts now, recognition notices later)."""
