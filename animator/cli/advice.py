"""The command line's words for an error: the remedy a library error names, as the command
that fixes it, and the one line it is printed as."""

from __future__ import annotations

import shlex

from animator.cli.options import _declared_words, _flag
from animator.settings import params
from animator.settings.errors import PLAIN_ADVICE, AnimatorError

ERROR_PREFIX = "animator: error: "


# The library's remedies (errors.PYTHON_ADVICE) in this command line's words.
CLI_ADVICE = {
    "resume_or_force": ": pass --resume to continue it or --force to start over",
    "undo_or_force": ": undo the change, or pass --force to start over",
    "force": ": pass --force to start over",
    "resume": ": continue with {again} --resume",
    "then_resume": ", then continue with {again} --resume",
    "shorten_or_force": ": make the video of them with {again} --resume --set frames={{frames}}, or "
                        "change the value and pass --force to start over",
    "assemble": ": every frame is kept; once fixed, make the video with `animator assemble`",
    **PLAIN_ADVICE,
}


def _advice(args, error: BaseException | None = None) -> dict[str, str]:
    """CLI_ADVICE for this command line: `animator render CONFIG --resume` continues a render;
    a failed assembly's facts give the `animator assemble` command that finishes it."""
    if getattr(args, "config", None) is None and args.command != "video":  # nothing to resume
        advice = {**CLI_ADVICE, "resume": ": run it again", "then_resume": ", then run it again",
                  "shorten_or_force": ": change the value and run it again"}
    else:
        advice = {key: text.format(again=_same_render(args)) for key, text in CLI_ADVICE.items()}
    facts = getattr(error, "facts", None)
    if getattr(error, "remedy", None) == "assemble" and facts:
        advice["assemble"] = (": every frame is kept; once fixed, make the video with "
                              f"`{_assemble_command(facts)}`")
    return advice


def _assemble_command(arguments: dict) -> str:
    """`animator assemble` with `animator.media.video.assemble`'s arguments as its flags."""
    words = ["animator", "assemble", str(arguments["frames"]), "-o", str(arguments["out"])]
    declared = {"fps": params.ANIMATION["fps"], **params.OUTPUT}
    for name, value in arguments.items():
        param = declared.get(name)
        if param is None or name in ("path", "format") or (value == param.default and name != "fps"):
            continue
        if isinstance(value, bool):
            words.append(_flag(name) if value else _flag(f"no_{name}"))
        else:
            words += [_flag(name), f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(words)


def _same_render(args) -> str:
    """The command that renders the same output again: every option that decides it, kept."""
    if args.command == "video":
        return _same_video(args)
    words = ["animator", args.command, args.config]
    words += ["-o", args.output] if getattr(args, "output", None) else []
    words += [word for item in getattr(args, "set", []) for word in ("--set", item)]
    words += _declared_words(args)
    words += [word for item in getattr(args, "plugin", []) for word in ("--plugin", item)]
    return shlex.join(words)


def _same_video(args) -> str:
    """`animator video CLIP -o OUT` with the options that decide the frames, kept."""
    words = ["animator", "video", args.clip, "-o", args.output]
    words += ["--config", args.config] if args.config else []
    words += _declared_words(args)
    for key in ("start", "end"):
        if (value := getattr(args, key)) is not None:
            words += [f"--{key}", str(value)]
    return shlex.join(words)


def _one_line(error: BaseException, advice: dict[str, str] | None = None) -> str:
    text = error.worded(advice) if advice and isinstance(error, AnimatorError) else str(error)
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__
