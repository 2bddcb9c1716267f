"""The project's exceptions: each carries a one-line message a user can act on.

`UserError` and its subclasses are a user's mistake (bad config, bad input, full disk);
the CLI prints them as one line and exits 2. Anything else is an internal error (exit 1).
"""

from __future__ import annotations


class AnimatorError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = 1


class UserError(AnimatorError):
    """A problem the user can fix; the message says what and how."""

    exit_code = 2


class ConfigError(UserError):
    """A config file or command-line setting is invalid."""


class InputError(UserError):
    """An input image cannot be read or used."""


class ModelError(UserError):
    """A model, its weights or a layer name cannot be used."""


class PluginError(UserError):
    """A transform plugin cannot be loaded, or failed while running."""


class OutputError(UserError):
    """An output cannot be written (permissions, existing file, full disk, encoder)."""


class Interrupted(AnimatorError):
    """A render was stopped by a signal after saving every complete frame."""

    exit_code = 130


def close_names(name: str, choices, n: int = 5) -> str:
    """Return ' Did you mean: a, b?' for the names closest to `name`, or ''."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""
