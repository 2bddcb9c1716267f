"""Declarations every layer reads: parameters, schedules, errors."""
