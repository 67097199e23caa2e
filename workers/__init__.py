"""Boochat's workers: one FastStream app each, all with the same inner shape (see runtime)."""
