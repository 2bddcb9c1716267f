"""The `animator` command: a thin argparse layer over library calls.

Every failure the project raises on purpose becomes one line on stderr and an exit status:
2 for a user's mistake, 1 for an internal error, 130 for an interrupted render.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import threading
import warnings
from pathlib import Path

from animator import __version__
from animator.cli.advice import CLI_ADVICE, ERROR_PREFIX, _advice, _one_line, _same_render  # noqa: F401
from animator.cli.options import _add_declared, _common_options, _overrides, _Parser
from animator.cli.output import (
    _import_backend,
    _notes,
    _progress,
    _quiet_backends,
    _say,
    _stop_on_signals,
    _sweep_status,
    _SweepProgress,
)
from animator.settings import params
from animator.settings.errors import AnimatorError, Interrupted, OutputError


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
    assemble.add_argument("-o", "--output", required=True,
                          help=f"the video to write ({', '.join(params.FORMATS)})")
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
    from animator.config import VideoInput

    def explain(key: str) -> str:
        return VideoInput.model_fields[key].description

    video = commands.add_parser("video", parents=[_common_options()],
                                help="dream a video clip, carrying the dream along the motion")
    video.add_argument("clip", help="input video file (anything ffmpeg reads: .mp4, .mov, .webm, ...)")
    video.add_argument("-o", "--output", required=True,
                       help=f"output: {' or '.join(params.suffixes(sound=True))} (keep the sound), "
                            f"{', '.join(params.suffixes(sound=False))}, or a folder for frames")
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
    from animator import sweep as sweep_module

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
