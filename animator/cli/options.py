"""The command line's options, made from the declarations (`settings.params`): each flag's type,
range, default and help come from there, and given options become `--set` overrides."""

from __future__ import annotations

import argparse
import typing

from animator.settings import params


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _value_type(param: params.Parameter):
    """How the command line reads the parameter's value: a type, or a function of the text."""
    choices = param.choices
    if choices:
        return lambda text: next((c for c in choices if str(c).lower() == text.lower()), text)
    annotation = param.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    annotation = args[0] if len(args) == 1 else annotation  # X | None
    if annotation in (int, float) and isinstance(param.default, str):  # e.g. tile_size: auto
        return lambda text: text if text == param.default else annotation(text)
    return annotation if annotation in (int, float) else str


def _in_range(param: params.Parameter, read):
    """`read`, then the declared range checked, as argparse reports a bad value (one line, exit
    2): `--seed -1` is refused as `dream.seed: -1` in a config is."""
    if param.range is None:
        return read

    def checked(text: str):
        value = read(text)
        problem = isinstance(value, (int, float)) and param.range.violation(value)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, got {text}")
        return value

    checked.__name__ = getattr(read, "__name__", "value")  # argparse names the type in errors
    return checked


def _help(param: params.Parameter) -> str:
    if "default" in param.help:
        return param.help
    shown = str(param.default).lower() if param.default in (None, True, False) else param.default
    return f"{param.help} (default: {shown})".replace("%", "%%")


def _add_declared(parser, table: dict[str, params.Parameter], skip: tuple[str, ...] = (),
                  section: str | None = None) -> None:
    """One option per declared parameter: its type, choices, default and help.

    Without `section` the option holds the value (default: the declared one). With a section
    (`render`), the option holds the text as typed, an override of `section.name` in the config,
    so a number may be a schedule (`--steps "10 + t/20"`); unset, the config's value stands.
    """
    for name, param in table.items():
        if name in skip:
            continue
        options = {"help": _help(param)}
        if param.annotation is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif param.choices:
            options.update(type=_value_type(param), choices=param.choices,
                           metavar="{" + ",".join(str(c).lower() for c in param.choices) + "}")
        elif section is None:  # used as it is: checked here
            options["type"] = _in_range(param, _value_type(param))
        elif not param.scheduled:  # an override: the config checks it, with its key path
            options["type"] = _value_type(param)
        if section is None:
            options["default"] = param.default
        else:
            options.update(default=argparse.SUPPRESS, dest=f"{section}.{name}")
            options.setdefault("metavar", name.upper())
        parser.add_argument(_flag(name), **options)


def _overrides(args) -> list[str]:
    """The declared options given on a `render` command line, as `section.key=value` overrides."""
    items = [(key, value) for key, value in vars(args).items() if "." in key]
    return [f"{key.removeprefix('animation.')}={_yaml_text(value)}" for key, value in items]


def _declared_words(args) -> list[str]:
    """The declared options given on the command line, as they would be typed again."""
    words = []
    for key, value in vars(args).items():
        if "." in key:
            flag = _flag(key.partition(".")[2])
            if isinstance(value, bool):
                words.append(flag if value else flag.replace("--", "--no-", 1))
            else:
                words += [flag, _yaml_text(value)]
    return words


def _yaml_text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake on the command line said in one line (not the usage block first),
    pointing to the command's --help; its sub-command parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}: see `{self.prog} --help`\n")


def _common_options() -> argparse.ArgumentParser:
    """--debug and --quiet, accepted before or after the sub-command (a fresh parser for each:
    argparse shares a parent's option objects, and their defaults, with every child)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks of internal errors and the backends' own messages")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bar and no notes; errors only")
    return common
