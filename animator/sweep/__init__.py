"""Sweeps: many variants of one animation, planned, rendered by executors, summed up."""
