"""The project's exceptions: each carries a one-line message a user can act on.

`UserError` and its subclasses are a user's mistake (bad config, bad input, full disk);
the CLI prints them as one line and exits 2. Anything else is an internal error (exit 1).

An error names its fix as a `remedy`, not as words: each front end words it in its own terms,
`resume=True` in Python (`str(error)`), `--resume` on the command line (`error.worded(...)` with
the CLI's table). A fix that is no option of any front end (check the path) is worded alike by all.
"""

from __future__ import annotations

from collections.abc import Mapping

# Remedies that are no option of a front end: every front end's table holds them as they are.
PLAIN_ADVICE = {
    "check_path": ": check the path",
    "image_file": ": give the path of one image file",
    "video_file": ": give the path of one video file",
    "audio_file": ": give the path of one sound file",
    "config_file": ": give the path of one YAML file",
    "video_input": ": give a video file",
    "re_encode": ": check the file, or re-encode it as MP4 (H.264)",
    "clip_with_frames": ": give a clip with frames",
    "other_times": ": give a clip with frames, or other start/end times",
    "earlier_start": ": give a start before the end",
    "trim": ": trim it with start/end, or re-encode it",
    "max_pixels": ": raise max_pixels to that and set `size:` to dream it smaller",
}

# A remedy's advice in Python's words; the CLI has a table with the same keys in its flags. An
# entry starts with the punctuation that joins it to the message.
PYTHON_ADVICE = {
    "resume_or_force": ": pass resume=True to continue it or force=True to start over",
    "undo_or_force": ": undo the change, or pass force=True to start over",
    "force": ": pass force=True to start over",
    "resume": ": continue with resume=True",
    "then_resume": ", then continue with resume=True",
    "shorten_or_force": ": make the video of them with frames={frames} and resume=True, or change "
                        "the value and pass force=True to start over",
    "assemble": ": every frame is kept; once fixed, make the video with "
                "animator.media.video.assemble(**error.facts)",
    **PLAIN_ADVICE,
}


# Remedies whose words name facts of the error, as {name} (its `facts[name]`).
WITH_FACTS = frozenset({"shorten_or_force"})


def word(message: str, remedy: str | None, advice: Mapping[str, str],
         facts: Mapping[str, object] | None = None) -> str:
    """`message` with `remedy` in a front end's words (`advice`: remedy -> text), the facts a
    remedy's words name filled in from `facts`."""
    if not remedy:
        return message
    text = advice[remedy]
    if remedy in WITH_FACTS:  # replaced, not str.format: the words may hold braces (a path)
        for name, value in (facts or {}).items():
            text = text.replace("{" + name + "}", str(value))
    return message + text


class AnimatorError(Exception):
    """Base of every error the project raises on purpose.

    `message` holds the facts (and any advice that is not an option); `remedy`, a key of
    `PYTHON_ADVICE`, the fix (a render option, or `PLAIN_ADVICE`), worded by the front end; `facts`, what a
    front end needs to word it (for `assemble`: `animator.media.video.assemble`'s arguments).
    """

    exit_code = 1

    def __init__(self, message: str = "", *, remedy: str | None = None,
                 facts: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        self.facts = dict(facts or {})

    def __str__(self) -> str:
        return self.worded(PYTHON_ADVICE)

    def worded(self, advice: Mapping[str, str]) -> str:
        """The message with its remedy in a front end's words (`advice`: remedy -> text)."""
        return word(self.message, self.remedy, advice, self.facts)


class UserError(AnimatorError):
    """A problem the user can fix; the message says what and how."""

    exit_code = 2


class ConfigError(UserError):
    """A config file or command-line setting is invalid.

    `problems` holds each problem as (key path, its line of the message), so that a form can show
    each line next to its field: `("dream.steps", "dream.steps: must be >= 0, got -1")`.
    """

    def __init__(self, message: str = "", *, remedy: str | None = None,
                 problems: tuple[tuple[str, str], ...] = (), facts: Mapping[str, object] | None = None
                 ) -> None:
        super().__init__(message, remedy=remedy, facts=facts)
        self.problems = tuple(problems)


class InputError(UserError):
    """An input image cannot be read or used."""


class TooLarge(InputError):
    """An input over a size limit (an image over max_pixels): refused before it is decoded."""


class ModelError(UserError):
    """A model, its weights or a layer name cannot be used."""


class PluginError(UserError):
    """A transform plugin cannot be loaded, or failed while running."""


class TransformValueError(PluginError):
    """A transform's parameter value at one frame breaks its declared range or check: the value
    comes from the config (or the Python call), not from the transform's code."""


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


def excerpt(value, limit: int = 80) -> str:
    """`repr(value)` cut to about `limit` characters, without building the whole of a huge value:
    an error quotes what it was given, never megabytes of it."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel = 3
    short.maxstring = short.maxother = short.maxlong = limit
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 6
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
