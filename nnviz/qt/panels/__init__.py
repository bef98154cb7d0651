"""Panels: one dock each, one job each: get the latest state and draw it."""
