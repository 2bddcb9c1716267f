"""Frame transforms: a registry of small pure functions applied between dreamed frames."""
