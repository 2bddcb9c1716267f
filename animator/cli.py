"""The `animator` command: a thin argparse layer over library calls.

Every failure the project raises on purpose becomes one line on stderr and an exit status:
2 for a user's mistake, 1 for an internal error, 130 for an interrupted render.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shlex
import signal
import sys
import threading
import typing
import warnings
from pathlib import Path

from animator import __version__
from animator.settings import params
from animator.settings.errors import PLAIN_ADVICE, AnimatorError, ConfigError, Interrupted, OutputError

ERROR_PREFIX = "animator: error: "


def _quiet_backends() -> None:
    # TensorFlow's C++ start-up chatter (oneDNN, CUDA probes) is noise for a user of this command.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for a moment: TensorFlow's C++ start-up lines
    ("Could not find cuda drivers ...") are written before its logging can be configured."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _import_backend(debug: bool) -> None:
    """Import Keras (and so its backend) up front, quietly unless --debug."""
    if debug:
        import keras  # noqa: F401
        return
    with _native_stderr_silenced():
        import keras  # noqa: F401


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


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per job; options from `animator.settings.params`."""
    parser = _Parser(
        prog="animator", description="Endless DeepDream animations from a still image.",
        parents=[_common_options()])
    parser.set_defaults(debug=False, quiet=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dream = commands.add_parser("dream", help="dream one image", parents=[_common_options()])
    dream.add_argument("image")
    dream.add_argument("-o", "--output", required=True, help="output image (.png, .jpg)")
    dream.add_argument("--force", action="store_true", help="overwrite an existing output")
    _add_declared(dream, {k: params.ANIMATION[k] for k in ("seed", "max_pixels")})
    _add_declared(dream, params.DREAM, skip=("cadence",))  # one image: no frames between dreams
    dream.set_defaults(handler=cmd_dream)

    render = commands.add_parser(
        "render", parents=[_common_options()], help="render an animation described in a YAML file",
        description="Render CONFIG. Each option below overrides the config's key of that name; "
                    "the defaults shown hold where neither sets it.")
    render.add_argument("config")
    render.add_argument("-o", "--output", help=params.OUTPUT["path"].help)
    render.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set dream.steps=5 (repeatable)")
    render.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                        help="load a transform plugin (repeatable)")
    render.add_argument("--resume", action="store_true",
                        help="continue an interrupted render of the same config")
    render.add_argument("--force", action="store_true", help="start over, replacing the output")
    render.add_argument("--dry-run", action="store_true",
                        help="check the config, print the resolved settings and the cost, stop")
    _add_declared(render, params.ANIMATION, section="animation")
    _add_declared(render.add_argument_group("dream (the config's dream: section)"), params.DREAM,
                  section="dream")
    _add_declared(render.add_argument_group("output (the config's output: section)"), params.OUTPUT,
                  skip=("path",), section="output")
    render.set_defaults(handler=cmd_render)

    render.add_argument("--audio", metavar="FILE",
                        help="a soundtrack: its features drive the schedules, its sound goes "
                             "into the MP4 (replaces the config's audio: file)")
    _add_sweep_parser(commands)
    _add_video_command(commands)
    _add_audio_command(commands)

    assemble = commands.add_parser("assemble", parents=[_common_options()],
                                   help="make a GIF or MP4 from a folder of frames")
    assemble.add_argument("frames_dir")
    assemble.add_argument("-o", "--output", required=True, help="out.gif or out.mp4")
    _add_declared(assemble, {"fps": params.ANIMATION["fps"]})
    _add_declared(assemble, params.OUTPUT, skip=("path", "format", "checkpoint_every"))
    assemble.add_argument("--force", action="store_true", help="overwrite an existing output")
    assemble.set_defaults(handler=cmd_assemble)

    listing = commands.add_parser("transforms", parents=[_common_options()],
                                  help="list the registered transforms")
    listing.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE")
    listing.set_defaults(handler=cmd_transforms)

    layers = commands.add_parser("layers", parents=[_common_options()],
                                 help="list a model's dreamable layers")
    layers.add_argument("model")
    layers.add_argument("--weights", default="none",
                        help="weights to build with (default none: names and shapes only)")
    layers.set_defaults(handler=cmd_layers)

    studio = commands.add_parser("studio", help="a web page to edit, preview, render and watch")
    studio.add_argument("--dir", default="renders", help="the renders folder (default: renders/)")
    studio.add_argument("--port", type=int, default=8765)
    studio.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default 127.0.0.1: this machine only; any other "
                             "needs the token printed in the URL)")
    studio.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                        help="load a transform plugin for the page (the page itself loads none)")
    studio.set_defaults(handler=cmd_studio)
    return parser


def _add_video_command(commands) -> None:
    from animator.config import Clip

    def explain(key: str) -> str:
        return Clip.model_fields[key].description

    video = commands.add_parser("video", parents=[_common_options()],
                                help="dream a video clip, carrying the dream along the motion")
    video.add_argument("clip", help="input video file (anything ffmpeg reads: .mp4, .mov, .webm, ...)")
    video.add_argument("-o", "--output", required=True,
                       help="output: .mp4 (keeps the sound), .gif, or a folder name for frames")
    video.add_argument("--config", help="YAML with dream:, transforms:, video: settings "
                       "(its input: is replaced by CLIP)")
    video.add_argument("--start", type=float, metavar="SECONDS", help=explain("start"))
    video.add_argument("--end", type=float, metavar="SECONDS", help=explain("end"))
    video.add_argument("--resume", action="store_true",
                       help="continue an interrupted run of the same clip and settings")
    video.add_argument("--force", action="store_true", help="start over, replacing the output")
    # carry_steps, a fine tuning of the carried frames, is set in a config's video: section only
    _add_declared(video.add_argument_group("video (the config's video: section)"), params.VIDEO,
                  skip=("carry_steps",), section="video")
    video.set_defaults(handler=cmd_video)


def _add_audio_command(commands) -> None:
    track = commands.add_parser("audio", parents=[_common_options()],
                                help="show a soundtrack's features: length, tempo, a table or a plot",
                                description="Print TRACK's length and tempo, then its features at "
                                            "each frame (or write them as a PNG plot with --plot).")
    track.add_argument("track", help="a sound file (anything ffmpeg reads: .mp3, .wav, .m4a, ...)")
    track.add_argument("--plot", metavar="PNG", help="write a plot of the features, beats marked")
    track.add_argument("--frames", type=int, help="frames to show (default: as long as the cut)")
    _add_declared(track, {"fps": params.ANIMATION["fps"]})
    _add_declared(track, params.AUDIO)
    track.set_defaults(handler=cmd_audio)


def cmd_audio(args) -> int:
    """`animator audio TRACK`: the features a render with `audio: TRACK` would see."""
    from animator.media import audio, images

    settings = {key: getattr(args, key) for key in params.AUDIO}
    declared = {"fps": params.ANIMATION["fps"], "frames": params.ANIMATION["frames"], **params.AUDIO}
    for key, param in declared.items():
        value = getattr(args, key)
        if value is not None and param.range is not None and param.range.violation(value):
            raise ConfigError(f"{_flag(key)}: {param.range.violation(value)}, got {value:g}")
    features = audio.analyse(args.track, args.fps, frames=args.frames, **settings)
    print(f"{args.track}: {features.seconds:.2f} s of sound from {args.start:g} s, "
          f"{features.tempo:.1f} BPM, {len(features.beats)} beats, {features.frames} frames at "
          f"{args.fps:g} fps")
    if args.plot:
        png = audio.plot(features)
        images.write_atomic(Path(args.plot), lambda stream: stream.write(png))
        _say(args, f"wrote {args.plot}")
    else:
        print(audio.table(features))
    return 0


def cmd_dream(args) -> int:
    """`animator dream IMAGE -o OUT`."""
    from animator.engine.dream import DreamSettings, make_dreamer
    from animator.media import images

    output = Path(args.output)
    _check_output(Path(args.image), output, args.force)
    _import_backend(args.debug)
    loaded = images.read_image(args.image, max_pixels=args.max_pixels)
    for note in loaded.notes:
        _notes(args)(note)
    settings = DreamSettings(**{field.name: getattr(args, field.name)
                                for field in dataclasses.fields(DreamSettings)
                                if field.name in params.DREAM
                                and getattr(args, field.name, "auto") != "auto"})
    dreamer = make_dreamer(args)  # the options are the dream section's, files from here
    with _progress(args, f"dreaming {Path(args.image).name}", unit="octave") as bar:
        pixels = dreamer.dream(loaded.pixels, settings, seed=args.seed, progress=bar.update)
    if output.suffix.lower() == ".png":
        images.write_png_atomic(output, pixels)
    else:
        _save_other(output, images.to_uint8(pixels))
    _say(args, f"wrote {output}")
    return 0


def _save_other(output: Path, pixels) -> None:
    from PIL import Image

    try:
        Image.fromarray(pixels).save(output)
    except (ValueError, KeyError) as error:
        raise OutputError(f"cannot write '{output}': {error}; use a .png or .jpg name") from error
    except OSError as error:
        from animator.media.images import output_error

        raise output_error(error, output) from error


def _check_output(image: Path, output: Path, force: bool) -> None:
    from animator.media.images import check_is_file, path_problem

    check_is_file(image, "image")
    if problem := path_problem(output):
        raise OutputError(f"cannot write '{output}' ({problem})", remedy="check_path")
    if output.exists() and image.exists() and output.resolve() == image.resolve():
        raise OutputError(f"output '{output}' is the input image: choose another output path")
    if output.exists() and not force:
        raise OutputError(f"output '{output}' exists: pass --force to overwrite it")
    _check_image_suffix(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create folder '{output.parent}': {error.strerror}") from error
    if not os.access(output.parent, os.W_OK):  # found now, not after the dream
        raise OutputError(f"cannot write '{output}': the folder is not writable: choose another "
                          "output folder or fix its permissions")


def _check_image_suffix(output: Path) -> None:
    """Refuse, before the dream, a suffix no RGB image can be saved as: unknown to Pillow, or a
    format it saves only in other modes (`.palm`: 1-bit and palette images)."""
    import io

    from PIL import Image

    kind = Image.registered_extensions().get(output.suffix.lower())
    try:
        if kind is None:
            raise KeyError(output.suffix)
        Image.new("RGB", (8, 8)).save(io.BytesIO(), format=kind)  # what the dream will save
    except (KeyError, ValueError, OSError) as error:
        why = (f"unknown image suffix '{output.suffix}'" if kind is None else
               f"a {kind} file ('{output.suffix}') cannot hold a colour image ({error})")
        raise OutputError(f"cannot write '{output}': {why}: use .png or .jpg") from None


def cmd_render(args) -> int:
    """`animator render CONFIG`: the frame loop, with a progress bar; Ctrl-C stops cleanly."""
    from animator import config as config_module

    # -o is a path typed in the shell: relative to the current folder, not to the config's
    output = [f"output.path={Path(args.output).absolute()}"] if args.output else []
    overrides = list(args.set) + _overrides(args) + output
    if args.plugin:
        overrides.append(f"plugins={args.plugin!r}")
    if args.audio:  # a cut the config gives stays
        key = "audio.path" if isinstance(config_module.read(args.config).get("audio"), dict) else "audio"
        overrides.append(f"{key}={Path(args.audio).absolute()}")
    config = config_module.load(args.config, overrides)
    if args.dry_run:
        from animator.renderer.output import describe

        print(describe(config))
        return 0
    return _render(config, args)


def cmd_video(args) -> int:
    """`animator video CLIP -o OUT`: dream each frame of a clip; Ctrl-C stops cleanly."""
    from animator import config as config_module

    clip = {"video": str(Path(args.clip).absolute()), "start": args.start, "end": args.end}
    clip = {key: value for key, value in clip.items() if value is not None}
    output = str(Path(args.output).absolute())
    if args.config:
        config = config_module.load(args.config, [*_overrides(args), f"output.path={output}"], input=clip)
    else:
        data = {"input": clip, "output": {"path": output}}
        for item in _overrides(args):
            config_module.apply_override(data, item)
        config = config_module.from_mapping(data, Path.cwd(), source=args.clip)
    return _render(config, args, f"dreaming {Path(args.clip).name}")


def _render(config, args, label: str | None = None) -> int:
    from animator.renderer.loop import render

    _import_backend(args.debug)
    stop = threading.Event()
    try:
        with _progress(args, label or f"rendering {Path(args.config).name}") as bar, \
                _stop_on_signals(stop):
            result = render(config, resume=args.resume, force=args.force, progress=bar.update,
                            stop=stop, note=_notes(args))
    except KeyboardInterrupt:  # a second Ctrl-C: the frame being dreamed is dropped, no more
        raise Interrupted(f"aborted: every complete frame is kept in '{config.frames_dir}'",
                          remedy="resume") from None
    where = result.output or result.frames_dir
    _say(args, f"wrote {where} ({result.frames} frames, {result.seconds:.0f} s)")
    return 0


def _say(args, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)


def _notes(args):
    """The `note` callback: remarks for the user, one line each (none with --quiet)."""
    return lambda text: _say(args, f"note: {text}")


class _Silent:
    """The progress bar of --quiet."""

    def update(self, *progress) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def _progress(args, label: str, unit: str = "frame"):
    from animator.progress import ProgressBar

    return _Silent() if args.quiet else ProgressBar(label, unit=unit)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event):
    """SIGINT/SIGTERM set `stop` (the render ends after the current frame); a second one aborts."""

    def handle(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after the current frame (press Ctrl-C again to abort now)",
              file=sys.stderr)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _add_sweep_parser(commands) -> None:
    sweep = commands.add_parser("sweep", parents=[_common_options()],
                                help="render every variant of a sweep file, here or on Ray")
    sweep.add_argument("sweep_file", help="a sweep YAML: base: plus grid: and/or random:")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a key of the base config (repeatable)")
    sweep.add_argument("-o", "--output", metavar="DIR", help="the sweep's folder (default: the file's)")
    sweep.add_argument("--ray", metavar="auto|ADDRESS",
                       help="render each variant as a task on this Ray cluster")
    sweep.add_argument("--jobs", type=int, default=1,
                       help="variants at once on this machine's CPU (default 1; a GPU takes one)")
    sweep.add_argument("--dry-run", action="store_true", help="list the variants, render nothing")
    sweep.set_defaults(handler=cmd_sweep)


def cmd_sweep(args) -> int:
    """`animator sweep SWEEP.yaml`: every variant not yet finished, then the contact sheet and
    index.html; a failed variant is reported and the others go on; Ctrl-C stops cleanly."""
    from animator.sweep import model as sweep_module

    folder = Path(args.output).absolute() if args.output else None
    plan = sweep_module.load(args.sweep_file, args.set, folder)
    if args.dry_run:
        for variant in plan.variants:
            print(f"{variant.id}  {', '.join(variant.label())}  {variant.folder}")
        return 0
    if not args.ray:
        _import_backend(args.debug)
    stop = threading.Event()
    progress = _SweepProgress(plan, args)
    with _stop_on_signals(stop), progress.bar:
        report = sweep_module.run(plan, jobs=args.jobs, ray_address=args.ray, stop=stop,
                                  on_frame=progress.update, on_outcome=progress.outcome)
    where = f"{report.index}" + (f" and {report.sheet.name}" if report.sheet else "")
    _say(args, f"wrote {where} ({len(report.with_status('finished'))} variants rendered, "
         f"{len(report.with_status('skipped'))} finished earlier)")
    return _sweep_status(report)


class _SweepProgress:
    """One bar for the frames of every variant still to render (none with --quiet)."""

    def __init__(self, plan, args) -> None:
        self.advice, self.quiet = _advice(args), args.quiet
        todo = [v for v in plan.variants if not v.finished()]
        self.done = {v.id: v.frames_done() for v in todo}
        self.total = sum(v.config.frames for v in todo)
        self.bar = _progress(args, f"sweep of {len(todo)} variants")

    def update(self, variant_id: str, done: int, total: int) -> None:
        self.done[variant_id] = done
        self.bar.update(sum(self.done.values()), self.total)

    def outcome(self, outcome) -> None:
        """A line per variant that ends (on a terminal, rich prints it above the bar); with
        --quiet, only the failures."""
        if outcome.status == "failed":
            line = f"variant {outcome.id} failed: {' '.join(outcome.worded(self.advice).split())}"
        elif outcome.status == "finished" and not self.quiet:
            line = f"variant {outcome.id} finished in {outcome.seconds:.0f} s"
        else:
            return
        print(line, file=sys.stderr)


def _sweep_status(report) -> int:
    stopped, failed = report.with_status("stopped"), report.with_status("failed")
    if stopped:
        raise Interrupted(f"stopped: {len(stopped)} variants unfinished, their frames kept",
                          remedy="resume")
    if failed:
        print(f"{ERROR_PREFIX}{len(failed)} of {len(report.outcomes)} variants failed: "
              f"{', '.join(o.id for o in failed)}", file=sys.stderr)
        return max(o.exit_code for o in failed)
    return 0


def cmd_assemble(args) -> int:
    """`animator assemble FRAMES_DIR -o out.gif`."""
    from animator.media import video
    from animator.media.images import path_problem

    if problem := path_problem(args.output):
        raise OutputError(f"cannot write '{args.output}' ({problem})", remedy="check_path")
    if Path(args.output).exists() and not args.force:
        raise OutputError(f"output '{args.output}' exists: pass --force to overwrite it")
    with _progress(args, f"assembling {Path(args.output).name}") as bar:
        count = video.assemble(args.frames_dir, args.output, fps=args.fps, reverse=args.reverse,
                               pingpong=args.pingpong, loop=args.loop, quality=args.quality,
                               palette=args.palette, dither=args.dither, progress=bar.update,
                               preset=args.preset)
    _say(args, f"wrote {args.output} ({count} frames)")
    return 0


def cmd_transforms(args) -> int:
    """`animator transforms`: every registered transform with its parameters."""
    import transforms

    transforms.load_plugins(args.plugin, Path.cwd())
    print("\n".join(transforms.describe()))
    return 0


def cmd_layers(args) -> int:
    """`animator layers MODEL`: the dreamable layers with their output shapes."""
    from animator.engine import models

    _import_backend(args.debug)
    backbone = models.build_backbone(args.model, args.weights)
    defaults = models.default_layers(args.model, backbone)
    for name, shape in models.dreamable_layers(backbone):
        mark = "  (default)" if name in defaults else ""
        dims = "x".join("?" if d is None else str(d) for d in shape[1:])
        print(f"{name:32s} {dims}{mark}")
    return 0


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


def cmd_studio(args) -> int:
    """`animator studio`: serve the page until Ctrl-C."""
    from animator.studio import serve

    def announce(url: str, warning: str | None) -> None:
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"studio: open {url}  (renders in {Path(args.dir).absolute()}; Ctrl-C to stop)",
              file=sys.stderr)

    _import_backend(args.debug)
    serve(args.dir, host=args.host, port=args.port, plugins=args.plugin, announce=announce)
    return 0


def _one_line(error: BaseException, advice: dict[str, str] | None = None) -> str:
    text = error.worded(advice) if advice and isinstance(error, AnimatorError) else str(error)
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status instead of raising."""
    _quiet_backends()
    for stream in (sys.stdout, sys.stderr):  # a file name of bytes no UTF-8 holds a surrogate:
        with contextlib.suppress(AttributeError, ValueError):  # printed escaped, as stderr does
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.debug:  # Keras warns once per layer of a weights file that does not fit: one error says it
        warnings.filterwarnings("ignore", category=UserWarning, module=r"keras\.")
    try:
        return args.handler(args)
    except AnimatorError as error:
        print(ERROR_PREFIX + _one_line(error, _advice(args, error)), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(ERROR_PREFIX + "interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # an internal error: one line unless --debug asks for more
        if args.debug:
            raise
        print(f"{ERROR_PREFIX}internal error: {type(error).__name__}: {_one_line(error)} "
              "(run with --debug for the traceback, and please report it)", file=sys.stderr)
        return 1

