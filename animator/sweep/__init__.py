"""Sweeps: many variants of one animation, planned (`model`), rendered by executors (`executors`,
`worker`), and summed up in a contact sheet and an index page (`results`); `load` and `run` are
the front door."""

from animator.sweep.model import load
from animator.sweep.plan import run

__all__ = ["load", "run"]
