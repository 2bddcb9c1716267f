#!/usr/bin/env python
"""Time `animator render` against the DeepDream tutorial's loop, on the same machine, in one run.

Two sides render the same animation (model, layers, octaves, steps, step size, size, frames, zoom):

- baseline: the loop of the TensorFlow DeepDream tutorial and Google's zoom notebook, written here.
  TensorFlow: a per-step `tf.function` with an input signature (the tutorial's `TiledGradients`: a
  random roll, tiled gradients, the gradient rolled back and divided by its std); the step update,
  the octaves (detail re-injection, as in the engine and Google's notebook, not the tutorial's plain
  resize) and the frames in a Python loop; the frame back to numpy every frame, zoomed with
  `scipy.ndimage.affine_transform` (order 1), written as PNG with Pillow; a GIF (Pillow) or an MP4
  (imageio's ffmpeg writer, from the PNGs) at the end.
  JAX: the same loop around a per-step `jax.jit(value_and_grad)` over `model.stateless_call`.
- animator: `animator.renderer.loop.render` of the same settings through the Python API.

Each side runs in its own subprocess with the same arguments, so its peak RSS is its own, and
reports JSON; this process prints the table and can save everything (`--json`). The steady-state
seconds per frame leave out the first two frames (model build, tracing, compiling; on XLA:CPU
the second frame loads the whole octaves' programs after the first frame's short runs); the end-to-end
frame rate is frames 2..N over their seconds plus the finish (the video written, every file on
disk), so it counts the writing and encoding that a side leaves for the end.
`--steps 0` times the frame pipeline alone (resize, transform, PNG, resume state, video).

    python scripts/bench.py                     # CPU defaults: 256x256, 6 frames, 3 octaves x 10 steps
    python scripts/bench.py --backend jax --size 320x240 --json bench.json
    python scripts/bench.py --peak-tflops 989   # on a GPU: achieved TFLOP/s against the peak
    python scripts/bench.py --pipeline          # the host pipeline alone: 1080p MP4, no dream
    python scripts/bench.py --precision         # each zoo model's step, float32 and bf16, 256² and 512²
    python scripts/bench.py --precision --save  # ... kept as this machine's for precision: auto

The table prints the whole process's ratio (every second from the backend's import to the last
file on disk, model build included) beside the steady one, and the first frame once the model is
built against a steady frame (animator: one trace serves every octave).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SIDES = ("baseline", "animator")
BACKENDS = ("tensorflow", "jax")


@dataclass(frozen=True)
class Settings:
    """One animation, as both sides render it. Sizes in pixels, step_size in grey levels."""

    backend: str = "tensorflow"
    width: int = 256
    height: int = 256
    frames: int = 6
    octaves: int = 3
    octave_scale: float = 1.4
    steps: int = 10
    step_size: float = 1.5
    jitter: int = 32
    tile_size: int = 512
    zoom: float = 1.04
    model: str = "inception_v3"
    layers: dict[str, float] = field(default_factory=lambda: {"mixed3": 1.0, "mixed5": 1.5})
    weights: str = "none"
    seed: int = 1
    fps: float = 10.0
    format: str = "gif"
    precision: str = "auto"  # animator's (the baseline, as the tutorial, is float32)
    preset: str | None = None  # animator's output.preset (None: its default)
    checkpoint_every: int | str | None = None  # animator's output.checkpoint_every

    @property
    def steps_per_frame(self) -> int:
        return self.octaves * self.steps


# ---------------------------------------------------------------------------------------------
# Command line and the parent process
# ---------------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """`256` -> (256, 256); `320x240` -> (320, 240): (width, height) in pixels."""
    width, _, height = text.lower().partition("x")
    try:
        size = (int(width), int(height or width))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or WxH in pixels, got {text!r}") from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return size


def parse_layers(text: str) -> dict[str, float]:
    """`mixed3,mixed5:1.5` -> {"mixed3": 1.0, "mixed5": 1.5} (the CLI's `--layers` syntax)."""
    from animator.engine.objective import parse_layers as terms_of

    return {str(term).rpartition("=")[0]: term.weight for term in terms_of(text)}


def build_parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=BACKENDS, default=defaults.backend,
                        help="Keras backend of both subprocesses (sets KERAS_BACKEND)")
    parser.add_argument("--size", type=parse_size, default=(defaults.width, defaults.height),
                        help="N or WxH pixels (default 256)")
    parser.add_argument("--frames", type=int, default=defaults.frames)
    parser.add_argument("--octaves", type=int, default=defaults.octaves)
    parser.add_argument("--octave-scale", type=float, default=defaults.octave_scale)
    parser.add_argument("--steps", type=int, default=defaults.steps, help="steps per octave")
    parser.add_argument("--step-size", type=float, default=defaults.step_size, help="grey levels")
    parser.add_argument("--jitter", type=int, default=defaults.jitter, help="largest roll, pixels")
    parser.add_argument("--tile-size", type=int, default=defaults.tile_size, help="pixels")
    parser.add_argument("--zoom", type=float, default=defaults.zoom,
                        help="zoom factor per frame (1: no transform at all)")
    parser.add_argument("--model", default=defaults.model, help="a name of animator's model zoo")
    parser.add_argument("--layers", type=parse_layers, default=None,
                        help="LAYER[=WEIGHT],... (default: the model's own, mixed3,mixed5=1.5)")
    parser.add_argument("--weights", default=defaults.weights, help="none | imagenet | PATH")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--format", choices=("gif", "mp4"), default=defaults.format,
                        help="the video both sides write")
    parser.add_argument("--precision", nargs="?", const="table", default=defaults.precision,
                        choices=("auto", "float32", "bfloat16", "float16", "table"),
                        help="animator's dream.precision (the baseline, as the tutorial, is float32); "
                             "alone: time each zoo model's step in float32 and bf16 instead")
    parser.add_argument("--models", type=lambda text: text.split(","), default=None,
                        help="--precision: these zoo models (default: all)")
    parser.add_argument("--precision-sizes", type=lambda text: [int(t) for t in text.split(",")],
                        default=[256, 512], help="--precision: square sides, pixels")
    parser.add_argument("--emulated-bf16", action="store_true",
                        help="--precision: time bf16 on a device without native bf16 too (slow)")
    parser.add_argument("--save", action="store_true",
                        help="--precision: keep the figures as this machine's, for precision: auto")
    parser.add_argument("--ship", action="store_true",
                        help="--precision: write them into the package's animator/engine/precision.json")
    parser.add_argument("--preset", default=None, help="animator's MP4 output.preset (libx264)")
    parser.add_argument("--checkpoint-every", type=parse_cadence, default=None,
                        help="animator's output.checkpoint_every: frames (1) or seconds (10s)")
    parser.add_argument("--pipeline", action="store_true",
                        help="the host pipeline alone: --size 1920x1080 --steps 0 --octaves 1 "
                             "--zoom 1 --format mp4 --frames 48, unless given")
    parser.add_argument("--first-frame", action="store_true",
                        help="time a one-frame render on both backends, cold then warm (JAX's "
                             "compilation cache and TensorFlow's trace cache in a fresh folder), "
                             "instead of the comparison")
    parser.add_argument("--start", choices=("cold", "warm"), default="cold",
                        help="the comparison's animator runs: cold (JAX's compilation cache and "
                             "TensorFlow's trace cache empty in each run, as the peer has none) "
                             "or warm (both filled by a one-frame render first, not timed)")
    parser.add_argument("--presets", action="store_true",
                        help="encode --frames frames of a zooming photo at --size with each x264 "
                             "preset: frames/s and file size (no dream)")
    parser.add_argument("--gpu-report", action="store_true",
                        help="JAX only: the README's GPU figures as one markdown table")
    parser.add_argument("--report-sizes", type=lambda text: [parse_size(t) for t in text.split(",")],
                        default=[(1920, 1080), (512, 512)],
                        help="--gpu-report: the end-to-end sizes, the first also the step's "
                             "(default 1920x1080,512)")
    parser.add_argument("--only", choices=SIDES, default=None, help="run one side only")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the sides alternately this many times; figures are medians")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak TFLOP/s (float32), to report the achieved fraction")
    parser.add_argument("--json", type=Path, default=None, help="save all results here")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the sides write frames and GIFs (default: a temporary folder)")
    parser.add_argument("--video", action="store_true",
                        help="dream a demo clip instead: seconds per frame and flicker with the flow "
                             "on and off and every: 3 (scripts/bench_video.py)")
    parser.add_argument("--worker", choices=(*SIDES, "probe", "precision"), default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    return parser


def parse_cadence(text: str) -> int | str:
    return int(text) if text.isdigit() else text


PIPELINE = {"size": (1920, 1080), "steps": 0, "octaves": 1, "zoom": 1.0, "format": "mp4", "frames": 48}


def apply_pipeline(args: argparse.Namespace, argv: list[str]) -> None:
    """`--pipeline`: the pipeline's settings for every option not on the command line."""
    given = {item.split("=", 1)[0].lstrip("-").replace("-", "_") for item in argv if item.startswith("--")}
    for key, value in PIPELINE.items():
        if key not in given:
            setattr(args, key, value)


def settings_from(args: argparse.Namespace) -> Settings:
    layers = args.layers
    if layers is None:
        from animator.engine.models import spec_for

        layers = dict(spec_for(args.model).default_layers) or {}
    width, height = args.size
    return Settings(
        backend=args.backend, width=width, height=height, frames=args.frames, octaves=args.octaves,
        octave_scale=args.octave_scale, steps=args.steps, step_size=args.step_size,
        jitter=args.jitter, tile_size=args.tile_size, zoom=args.zoom, model=args.model,
        layers=layers, weights=args.weights, seed=args.seed, format=args.format,
        precision=args.precision, preset=args.preset, checkpoint_every=args.checkpoint_every,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.video:
        return video_bench(args)
    if args.pipeline:
        apply_pipeline(args, list(sys.argv[1:] if argv is None else argv))
    if args.precision == "table" and not args.worker:
        return precision_bench(args, argv_for(argv))
    settings = settings_from(args)
    if args.worker:
        work = {"probe": run_probe, "precision": run_precision}.get(args.worker, run_worker)
        result = work(args.worker, settings, args.workdir or Path(tempfile.mkdtemp()))
        args.result.write_text(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="animator-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        if args.presets:
            report = preset_report(settings, workdir)
            print(format_presets(report))
        elif args.first_frame:
            report = first_frame_report(argv_for(argv), workdir)
            print(format_first_frame(report))
        elif args.gpu_report:
            report = gpu_report(args, argv_for(argv), workdir)
            print(format_gpu_report(report))
        else:
            report = compare(args, settings, argv_for(argv), workdir)
            print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def video_bench(args: argparse.Namespace) -> int:
    """`--video`: a dreamed clip, in this process (see scripts/bench_video.py)."""
    import bench_video  # beside this script, on sys.path when it runs

    os.environ.setdefault("KERAS_BACKEND", args.backend)
    with tempfile.TemporaryDirectory(prefix="animator-bench-video-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        bench_video.run(args, workdir)
    return 0


def compare(args: argparse.Namespace, settings: Settings, argv: list[str], workdir: Path) -> dict:
    """The baseline and animator, alternately `--repeat` times; the summary. `--start` says
    whether animator's compile caches start empty in each run or filled."""
    sides = [args.only] if args.only else list(SIDES)
    runs = {side: [] for side in sides}
    if args.start == "warm" and "animator" in sides:
        spawn("animator", [*argv, "--frames", "1"], settings.backend, workdir / "warm-up",
              **caches(workdir / "caches"))
    for round_ in range(args.repeat):
        for side in sides:
            folder = workdir / f"{side}{round_}"
            cache = workdir / "caches" if args.start == "warm" else folder / "caches"
            runs[side].append(spawn(side, argv, settings.backend, folder, **caches(cache)))
    return {**summarise(settings, runs, args.peak_tflops), "start": args.start}


def caches(folder: Path) -> dict:
    """The environment that puts JAX's compilation cache and TensorFlow's trace cache in `folder`."""
    return {"ANIMATOR_JAX_CACHE": str(folder / "jax"), "ANIMATOR_TF_CACHE": str(folder / "tensorflow")}


def argv_for(argv: list[str] | None) -> list[str]:
    """The parent's own arguments, minus the ones only the parent uses."""
    argv = list(sys.argv[1:] if argv is None else argv)
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in ("--json", "--only", "--repeat", "--workdir", "--peak-tflops", "--report-sizes",
                    "--start"):
            skip = "=" not in item
            continue
        if name in ("--first-frame", "--gpu-report", "--save", "--ship"):
            continue
        kept.append(item)
    return kept


def spawn(side: str, argv: list[str], backend: str, workdir: Path, **env_extra: str) -> dict:
    """Run one side in a fresh interpreter and return its JSON result."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = workdir / "result.json"
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", **env_extra)
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--worker", side,
               "--result", str(result), "--workdir", str(workdir)]
    print(f"bench: running {side} ({backend}) ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0 or not result.is_file():
        sys.stderr.write(done.stdout[-4000:])
        raise SystemExit(f"bench: the {side} side failed (exit {done.returncode})")
    return json.loads(result.read_text())


# ---------------------------------------------------------------------------------------------
# Summary and table
# ---------------------------------------------------------------------------------------------


def warmup_frames(frames: int) -> int:
    """How many first frames the steady figures leave out: two where there are three or more
    (the first builds, traces and compiles; on XLA:CPU the second loads the whole octaves'
    programs after the first frame's short runs, `animator.engine.dream.run_lengths`), else one, or
    none for a lone frame."""
    return 2 if frames >= 3 else frames - 1


def steady_seconds(frame_seconds: list[float]) -> float:
    """Mean seconds per frame after the warm-up frames (`warmup_frames`)."""
    steady = frame_seconds[warmup_frames(len(frame_seconds)):]
    return sum(steady) / len(steady)


def end_to_end_fps(run: dict) -> float:
    """Frames 2..N (or the only one) over their seconds plus the finish: video and files done
    (the second frame's loading counted: it is part of the render)."""
    frames = run["frame_seconds"][1:] or run["frame_seconds"]
    return len(frames) / (sum(frames) + run["finish_seconds"])


def summarise_side(settings: Settings, runs: list[dict], peak_tflops: float | None) -> dict:
    per_frame = statistics.median(steady_seconds(run["frame_seconds"]) for run in runs)
    flops = runs[0].get("flops_per_frame")
    side = {
        "steady_seconds_per_frame": per_frame,
        "end_to_end_fps": statistics.median(end_to_end_fps(run) for run in runs),
        "cpu_seconds_per_frame": statistics.median(run["cpu_seconds_per_frame"] for run in runs),
        "first_frame_seconds": statistics.median(run["frame_seconds"][0] for run in runs),
        "finish_seconds": statistics.median(run["finish_seconds"] for run in runs),
        "total_seconds": statistics.median(run["total_seconds"] for run in runs),
        "steps_per_second": settings.steps_per_frame / per_frame,
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "runs": runs,
    }
    built = [run for run in runs if run.get("model_seconds") is not None]
    if built:  # the first frame's own cost: tracing (and on JAX compiling) plus one dream
        side["first_frame_after_model_seconds"] = statistics.median(
            run["frame_seconds"][0] - run["model_seconds"] for run in built)
        side["first_to_steady"] = side["first_frame_after_model_seconds"] / per_frame
    octave = [run for run in runs if run.get("octave_seconds")]
    if octave:  # CPU time too: on a shared machine the wall-clock share swings with the load
        side["octave_seconds"] = statistics.median(run["octave_seconds"] for run in octave)
        side["octave_share"] = side["octave_seconds"] / per_frame
        side["octave_cpu_share"] = statistics.median(
            run["octave_cpu_seconds"] / run["cpu_seconds_per_frame"] for run in octave)
    if flops:
        side["achieved_tflops"] = flops / per_frame / 1e12
        if peak_tflops:
            side["fraction_of_peak"] = side["achieved_tflops"] / peak_tflops
    return side


def summarise(settings: Settings, runs: dict[str, list[dict]], peak_tflops: float | None) -> dict:
    report = {
        "settings": asdict(settings),
        "machine": machine(),
        "peak_tflops": peak_tflops,
        "flops_per_frame": next(iter(runs.values()))[0].get("flops_per_frame"),
        "first_frame_excluded": True,
    }
    report.update({side: summarise_side(settings, side_runs, peak_tflops)
                   for side, side_runs in runs.items()})
    if all(side in report for side in SIDES):
        report["ratio"] = (report["baseline"]["steady_seconds_per_frame"]
                           / report["animator"]["steady_seconds_per_frame"])
        report["whole_process_ratio"] = (report["baseline"]["total_seconds"]
                                         / report["animator"]["total_seconds"])
    return report


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    shown = [flag for flag in SHOWN_FLAGS if flag in flags]
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "flags": shown, "device": f"flags {' '.join(shown) or 'none of ' + ' '.join(SHOWN_FLAGS)}"}


# The CPU flags that decide the convolutions' speed and whether bf16 is native.
SHOWN_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def format_table(report: dict) -> str:
    s = report["settings"]
    sides = [side for side in SIDES if side in report]
    rows = [
        ("steady s/frame (frames 3..N, mean)", "steady_seconds_per_frame", "{:.3f}"),
        ("end-to-end frames/s (2..N + finish)", "end_to_end_fps", "{:.2f}"),
        ("CPU ms/frame (threads + ffmpeg, 3..N)", "cpu_seconds_per_frame", "{:.0f}", 1000),
        ("first frame s (build + trace + dream)", "first_frame_seconds", "{:.2f}"),
        ("first frame s once the model is built", "first_frame_after_model_seconds", "{:.2f}"),
        ("  ... against a steady frame", "first_to_steady", "{:.2f}x"),
        (f"finish s ({s['format'].upper()})", "finish_seconds", "{:.2f}"),
        ("total s", "total_seconds", "{:.2f}"),
        ("dream steps/s (steady)", "steps_per_second", "{:.2f}"),
        ("compiled octaves alone s/frame", "octave_seconds", "{:.3f}"),
        ("octaves' share of a frame", "octave_share", "{:.1%}"),
        ("octaves' share of a frame's CPU", "octave_cpu_share", "{:.1%}"),
        ("peak RSS MB (own subprocess)", "peak_rss_mb", "{:.0f}"),
        ("achieved TFLOP/s (steady)", "achieved_tflops", "{:.4f}"),
        ("fraction of peak", "fraction_of_peak", "{:.1%}"),
    ]
    lines = [
        f"{s['model']} {s['layers']} weights={s['weights']} backend={s['backend']}"
        f" precision={s['precision']} -> {s['format']}",
        f"{s['width']}x{s['height']}, {s['frames']} frames, {s['octaves']} octaves x {s['steps']} steps"
        f" (scale {s['octave_scale']}), step {s['step_size']}, jitter {s['jitter']},"
        f" tile {s['tile_size']}, zoom {s['zoom']}",
        f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, "
        f"{report['machine'].get('device', '')}",
    ]
    if "start" in report:
        lines.append(f"start: {report['start']} (animator's compile caches "
                     f"{'filled by a one-frame render first' if report['start'] == 'warm' else 'empty'})")
    if report.get("flops_per_frame"):
        lines.append(f"model GFLOP per frame (conv/dense, x3 for forward+backward): "
                     f"{report['flops_per_frame'] / 1e9:.1f}")
    lines.append(f"{'':40}" + "".join(f"{side:>12}" for side in sides))
    for label, key, fmt, *scale in rows:
        if any(key in report[side] for side in sides):
            cells = [fmt.format(report[side][key] * (scale or [1])[0]) if key in report[side] else "-"
                     for side in sides]
            lines.append(f"{label:40}" + "".join(f"{cell:>12}" for cell in cells))
    if "ratio" in report:
        lines.append(f"ratio baseline/animator (steady s/frame): {report['ratio']:.2f}x")
        lines.append(f"ratio baseline/animator (whole process, {s['frames']} frames): "
                     f"{report['whole_process_ratio']:.2f}x")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The worker: one side in its own process
# ---------------------------------------------------------------------------------------------


def run_worker(side: str, settings: Settings, workdir: Path) -> dict:
    """Render the animation with `side` and return its timings, peak RSS and FLOP count."""
    started = time.perf_counter()
    import keras  # noqa: F401  (the backend's import is the same for both sides: not timed)

    imported = time.perf_counter()
    compiles = count_compiles()
    dreamers = capture_dreamers() if side == "animator" else []
    render = render_baseline if side == "baseline" else render_animator
    cpu = {}
    frame_seconds, finish_seconds = render(settings, workdir, cpu)
    total = time.perf_counter() - imported
    warmup = warmup_frames(len(frame_seconds))
    result = {
        "side": side,
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "import_seconds": imported - started,
        "frame_seconds": frame_seconds,
        "finish_seconds": finish_seconds,
        "total_seconds": total,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        # every thread's and ffmpeg's, after the warm-up frames and the finish: steady even on a
        # shared machine
        "cpu_seconds_per_frame": (cpu_seconds() - cpu["frames"][max(warmup, 1) - 1])
        / max(1, len(frame_seconds) - warmup),
        "flops_per_frame": frame_flops(settings),
    }
    result.update(compiles)
    if dreamers:
        result["model_seconds"] = dreamers[0][1]
        # the octave's traces, and those TensorFlow's trace cache gave instead
        result["traces"], result["restored"] = dreamers[0][0]._octave.traces, dreamers[0][0]._octave.restored
        if settings.steps and settings.frames > 1:
            result["octave_seconds"], result["octave_cpu_seconds"] = time_octaves(dreamers[0][0], settings)
    return result


def count_compiles() -> dict:
    """On JAX, a dict that counts the persistent compilation cache's hits and misses from now on
    (`cache_hits`, `cache_misses`: programs loaded and compiled); empty on TensorFlow."""
    counts = {}
    if os.environ.get("KERAS_BACKEND") != "jax":
        return counts
    from jax import monitoring

    def listen(event, **_):
        name = event.rpartition("/")[2]
        if name in ("cache_hits", "cache_misses"):
            counts[name] = counts.get(name, 0) + 1

    monitoring.register_event_listener(listen)
    return counts


def cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and its finished children (ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def capture_dreamers() -> list[tuple]:
    """(Dreamer, seconds to build it) of each Dreamer the render builds, from now on."""
    from animator.engine import dream

    built, original = [], dream.Dreamer.__init__

    def init(self, *args, **kwargs):
        start = time.perf_counter()
        original(self, *args, **kwargs)
        built.append((self, time.perf_counter() - start))

    dream.Dreamer.__init__ = init
    return built


def dream_settings(settings: Settings, **changes):
    from animator.engine.dream import DreamSettings

    values = {"octaves": settings.octaves, "octave_scale": settings.octave_scale,
              "steps": settings.steps, "step_size": settings.step_size, "jitter": settings.jitter,
              "tile_size": settings.tile_size, **changes}
    return DreamSettings(**values)


def time_octave(dreamer, size: tuple[int, int], settings, repeats: int = 2, **layout) -> tuple:
    """(seconds of the first call, mean seconds of `repeats` more, their mean CPU seconds) of one
    octave's compiled calls alone at `size` (height, width), in the render's runs after its first
    frame: the model's
    forward and backward passes for the settings' steps, no resize, transform or write.
    `layout` may set `tile_size` and `tile_batch`."""
    import numpy as np
    from keras import ops

    from animator.engine.dream import Losses, run_lengths

    rng = np.random.default_rng(0)
    image = ops.convert_to_tensor(rng.uniform(0, 255, (*size, 3)).astype("float32"))
    shifts = rng.integers(-settings.jitter, settings.jitter + 1, (settings.steps, 2))
    tile = layout.get("tile_size") or dreamer.tile_size(*size, settings)
    batch = layout.get("tile_batch") or dreamer.tile_batch(*size, tile)

    def run():
        losses = Losses()
        dreamer._ascend(image, shifts, run_lengths(settings.steps), settings, tile, batch, math.inf,
                        losses, None, {})
        len(losses)  # waits for the octave's last step

    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    start, cpu = time.perf_counter(), cpu_seconds()
    for _ in range(repeats):
        run()
    return first, (time.perf_counter() - start) / repeats, (cpu_seconds() - cpu) / repeats


def time_octaves(dreamer, settings: Settings) -> tuple[float, float]:
    """Seconds and CPU seconds of a frame's compiled octaves alone (compiled by the render)."""
    ascent = dream_settings(settings)
    timings = [time_octave(dreamer, size, ascent) for size in octave_sizes(settings)]
    return sum(t[1] for t in timings), sum(t[2] for t in timings)


def octave_sizes(settings: Settings) -> list[tuple[int, int]]:
    """The engine's octave sizes (height, width), smallest first: both sides dream the same."""
    from animator.engine.dream import octave_sizes as sizes

    return sizes(settings.height, settings.width, settings.octaves, settings.octave_scale)


def tile_starts(length: int, tile_size: int) -> list[int]:
    """Tile starts covering `length` pixels (the tutorial's tiles, the last one kept)."""
    return list(range(0, length, tile_size))


def start_frame(settings: Settings):
    from animator.media.images import noise_image

    return noise_image((settings.width, settings.height), seed=settings.seed)


def dream_model(settings: Settings):
    """The tutorial's `dream_model`: the backbone cut at the dreamed layers, raw inputs."""
    import keras

    from animator.engine.models import build_backbone

    backbone = build_backbone(settings.model, settings.weights)
    outputs = [backbone.get_layer(name.split(":")[0]).output for name in settings.layers]
    return keras.Model(backbone.inputs, outputs)


def calc_loss(activations, settings: Settings):
    """The tutorial's `calc_loss`: a weighted sum of each layer's mean activation."""
    from keras import ops

    if not isinstance(activations, (list, tuple)):  # a model with one output returns it bare
        activations = [activations]
    total = 0.0
    for activation, (name, weight) in zip(activations, settings.layers.items()):
        layer, _, channel = name.partition(":")
        chosen = activation[..., int(channel)] if channel else activation
        total = total + weight * ops.mean(chosen)
    return total


def preprocess(pixels, settings: Settings):
    from animator.engine.models import preprocess as convert
    from animator.engine.models import spec_for

    return convert(pixels, spec_for(settings.model).preprocess)


def render_baseline(settings: Settings, workdir: Path, cpu: dict) -> tuple[list[float], float]:
    """The tutorial's loop; returns seconds per frame (the first includes the build) and GIF seconds.
    `cpu["frames"]` gets the process's CPU seconds as each frame is done."""
    import numpy as np

    clock = time.perf_counter()
    model = dream_model(settings)
    gradient_step = (tf_gradient_step if settings.backend == "tensorflow" else jax_gradient_step)(
        model, settings)
    frames_dir = workdir / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(settings.seed)
    frame, frame_seconds = start_frame(settings), []
    for index in range(settings.frames):
        frame = dream_octaves(frame, gradient_step, settings, rng)
        save_png(frame, frames_dir / f"{index:04d}.png")
        if settings.zoom != 1:
            frame = zoom_scipy(frame, settings.zoom)
        now = time.perf_counter()
        frame_seconds.append(now - clock)
        clock = now
        cpu.setdefault("frames", []).append(cpu_seconds())
    paths = sorted(frames_dir.glob("*.png"))
    if settings.format == "mp4":
        write_mp4(paths, workdir / "baseline.mp4", settings.fps)
    else:
        write_gif(paths, workdir / "baseline.gif", settings.fps)
    return frame_seconds, time.perf_counter() - clock


def dream_octaves(frame, gradient_step, settings: Settings, rng):
    """One frame: octaves smallest first with detail re-injection, a Python loop over steps."""
    from keras import ops

    base_frame = ops.convert_to_tensor(frame, "float32")
    detail = None
    for size in octave_sizes(settings):
        base = resize(base_frame, size)
        image = base if detail is None else base + resize(detail, size)
        for _ in range(settings.steps):
            shift = rng.integers(-settings.jitter, settings.jitter + 1, 2).astype("int32")
            _, gradient = gradient_step(image, shift)
            image = ops.clip(image + gradient * settings.step_size, 0.0, 255.0)
        detail = image - base
    return ops.convert_to_numpy(image)


def resize(image, size: tuple[int, int]):
    from keras import ops

    if tuple(image.shape[:2]) == tuple(size):
        return image
    return ops.image.resize(image, size, interpolation="bilinear", antialias=True)


def tf_gradient_step(model, settings: Settings):
    """The tutorial's `TiledGradients`: one step's (loss, normalised gradient), traced once."""
    import tensorflow as tf

    @tf.function(input_signature=(
        tf.TensorSpec([None, None, 3], tf.float32),
        tf.TensorSpec([2], tf.int32),
        tf.TensorSpec([], tf.int32),
    ))
    def tiled_gradients(image, shift, tile_size):
        rolled = tf.roll(image, shift, axis=[0, 1])
        gradients, total = tf.zeros_like(rolled), tf.constant(0.0)
        for y in tf.range(0, tf.shape(rolled)[0], tile_size):
            for x in tf.range(0, tf.shape(rolled)[1], tile_size):
                with tf.GradientTape() as tape:
                    tape.watch(rolled)
                    tile = rolled[y:y + tile_size, x:x + tile_size]
                    loss = calc_loss(model(preprocess(tile[None], settings), training=False), settings)
                gradients = gradients + tape.gradient(loss, rolled)
                total = total + tf.cast(loss, tf.float32)
        gradients = tf.roll(gradients, -shift, axis=[0, 1])
        # The engine's floor instead of the tutorial's `+ 1e-8`: same work, comparable steps.
        return total, gradients / tf.maximum(tf.math.reduce_std(gradients), 1e-30)

    tile_size = tf.constant(settings.tile_size, tf.int32)
    return lambda image, shift: tiled_gradients(image, shift, tile_size)


def jax_gradient_step(model, settings: Settings):
    """The same step as a `jax.jit(value_and_grad)` over `model.stateless_call` (one trace per size)."""
    import functools

    import jax
    import jax.numpy as jnp

    def loss_of(trainable, non_trainable, tile):
        outputs, _ = model.stateless_call(trainable, non_trainable, preprocess(tile[None], settings),
                                          training=False)
        return calc_loss(outputs, settings)

    value_and_grad = jax.value_and_grad(loss_of, argnums=2)

    @functools.partial(jax.jit, static_argnames="tile_size")
    def tiled_gradients(trainable, non_trainable, image, shift, tile_size):
        rolled = jnp.roll(image, (shift[0], shift[1]), axis=(0, 1))
        gradients, total = jnp.zeros_like(rolled), 0.0
        for y in tile_starts(rolled.shape[0], tile_size):
            for x in tile_starts(rolled.shape[1], tile_size):
                tile = rolled[y:y + tile_size, x:x + tile_size]
                loss, gradient = value_and_grad(trainable, non_trainable, tile)
                gradients = gradients.at[y:y + tile_size, x:x + tile_size].add(gradient)
                total = total + loss
        gradients = jnp.roll(gradients, (-shift[0], -shift[1]), axis=(0, 1))
        return total, gradients / jnp.maximum(jnp.std(gradients), 1e-30)

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    return lambda image, shift: tiled_gradients(trainable, non_trainable, image, jnp.asarray(shift),
                                                tile_size=settings.tile_size)


def zoom_scipy(frame, factor: float):
    """Google's zoom notebook: `scipy.ndimage.affine_transform`, order 1, about the centre."""
    import numpy as np
    from scipy import ndimage

    centre = (np.array(frame.shape, dtype=np.float64) - 1) / 2
    scale = np.array([1 / factor, 1 / factor, 1.0])
    offset = centre * (1 - scale)
    return ndimage.affine_transform(frame, scale, offset, order=1, mode="reflect")


def save_png(frame, path: Path) -> None:
    import numpy as np
    from PIL import Image

    Image.fromarray(np.uint8(np.clip(np.rint(frame), 0, 255))).save(path)


def write_gif(paths: list[Path], out: Path, fps: float) -> None:
    from PIL import Image

    frames = [Image.open(path) for path in paths]
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)


def write_mp4(paths: list[Path], out: Path, fps: float) -> None:
    """The notebooks' MP4: imageio's ffmpeg writer, fed the PNGs one at a time."""
    import imageio.v2 as imageio

    with imageio.get_writer(out, fps=fps, codec="libx264", macro_block_size=1) as writer:
        for path in paths:
            writer.append_data(imageio.imread(path))


def animator_mapping(settings: Settings, workdir: Path) -> dict:
    """The YAML mapping of the same animation."""
    return {
        "input": {"noise": {"size": [settings.width, settings.height], "seed": settings.seed}},
        "frames": settings.frames,
        "fps": settings.fps,
        "seed": settings.seed,
        "dream": {
            "model": settings.model, "weights": settings.weights, "layers": dict(settings.layers),
            "octaves": settings.octaves, "octave_scale": settings.octave_scale,
            "steps": settings.steps, "step_size": settings.step_size, "jitter": settings.jitter,
            "tile_size": settings.tile_size, "precision": settings.precision,
        },
        "transforms": [{"zoom": {"factor": settings.zoom}}] if settings.zoom != 1 else [],
        "output": {"path": str(workdir / f"animator.{settings.format}"), **output_options(settings)},
    }


def output_options(settings: Settings) -> dict:
    options = {"preset": settings.preset, "checkpoint_every": settings.checkpoint_every}
    return {key: value for key, value in options.items() if value is not None}


def render_animator(settings: Settings, workdir: Path, cpu: dict) -> tuple[list[float], float]:
    """`animator render` through the API; frame times from its progress callback."""
    from animator.config import from_mapping
    from animator.renderer.loop import render

    config = from_mapping(animator_mapping(settings, workdir), base_dir=workdir, source="bench.yaml")
    started = time.perf_counter()
    marks = [started]

    def progress(done, total, first):
        marks.append(time.perf_counter())
        cpu.setdefault("frames", []).append(cpu_seconds())

    render(config, force=True, progress=progress)
    finished = time.perf_counter()
    return [b - a for a, b in zip(marks, marks[1:])], finished - marks[-1]


# ---------------------------------------------------------------------------------------------
# x264 presets: time against size
# ---------------------------------------------------------------------------------------------

PRESETS_COMPARED = ("ultrafast", "superfast", "veryfast", "faster", "medium")


def zooming_photo(settings: Settings) -> list:
    """`settings.frames` frames of scikit-image's astronaut at the frame size, zooming 1% a frame."""
    import numpy as np
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((settings.width, settings.height))
    frames = []
    for index in range(settings.frames):
        crop = 1 / 1.01 ** index
        w, h = settings.width * crop, settings.height * crop
        box = ((settings.width - w) / 2, (settings.height - h) / 2, (settings.width + w) / 2,
               (settings.height + h) / 2)
        frames.append(np.asarray(photo.resize((settings.width, settings.height), box=box)))
    return frames


def preset_report(settings: Settings, workdir: Path) -> dict:
    """Each preset's encoding frames/s (ffmpeg started and finished included) and MB."""
    from animator.media.video import Mp4Writer

    frames, report = zooming_photo(settings), {"machine": machine(), "settings": asdict(settings)}
    workdir.mkdir(parents=True, exist_ok=True)
    for preset in PRESETS_COMPARED:
        out = workdir / f"{preset}.mp4"
        start = time.perf_counter()
        with Mp4Writer(out, settings.fps, preset=preset) as writer:
            for frame in frames:
                writer.write(frame)
        report[preset] = {"fps": len(frames) / (time.perf_counter() - start),
                          "mb": out.stat().st_size / 1e6}
    return report


def format_presets(report: dict) -> str:
    s = report["settings"]
    lines = [f"x264 presets, {s['width']}x{s['height']}, {s['frames']} frames of a zooming photo, "
             f"quality 8 (crf 18); machine: {report['machine']['cpu']}, {report['machine']['cores']} cores",
             "| preset | frames/s | MB | size vs veryfast |", "|---|---|---|---|"]
    base = report["veryfast"]["mb"]
    lines += [f"| {p} | {report[p]['fps']:.1f} | {report[p]['mb']:.2f} | {report[p]['mb'] / base:.2f}× |"
              for p in PRESETS_COMPARED]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# First frame: cold and warm starts
# ---------------------------------------------------------------------------------------------


def first_frame_report(argv: list[str], workdir: Path) -> dict:
    """A one-frame render on each backend, twice: cold (JAX's compilation cache and TensorFlow's
    trace cache empty) and warm."""
    report = {"machine": machine()}
    for backend in BACKENDS:
        runs = {}
        for start in ("cold", "warm"):
            run = spawn("animator", [*argv, "--frames", "1"], backend, workdir / f"{backend}-{start}",
                        **caches(workdir / "caches"))
            runs[start] = {"model_seconds": run["model_seconds"],
                           "first_frame_seconds": run["frame_seconds"][0],
                           "compiled": run.get("cache_misses"), "loaded": run.get("cache_hits"),
                           "traces": run.get("traces"), "restored": run.get("restored")}
        report[backend] = runs
    return report


def format_first_frame(report: dict) -> str:
    lines = [f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores",
             "first frame of a one-frame render (s): model built, then the frame dreamed and written",
             f"{'':14}{'cold':>10}{'warm':>10}{'cold after model':>18}{'warm after model':>18}"
             f"{'compiled (JAX) or traced (TF), cold / warm':>46}"]
    for backend in BACKENDS:
        cold, warm = report[backend]["cold"], report[backend]["warm"]
        after = [run["first_frame_seconds"] - run["model_seconds"] for run in (cold, warm)]
        made = "compiled" if cold["compiled"] is not None else "traces"
        counts = f"{cold[made] or 0} / {warm[made] or 0}" if cold[made] is not None else "-"
        lines.append(f"{backend:14}{cold['first_frame_seconds']:>10.2f}{warm['first_frame_seconds']:>10.2f}"
                     f"{after[0]:>18.2f}{after[1]:>18.2f}{counts:>46}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The GPU report (JAX only: it runs where TensorFlow is not installed)
# ---------------------------------------------------------------------------------------------

# Dense peaks (TFLOP/s) of cards whose figures the README wants: float32 convolutions run as TF32
# on these by default. SXM parts; a PCIe H100 is 378 / 756: give --peak-tflops there.
PEAKS = {"H100": {"float32": 495.0, "bfloat16": 989.0}, "H200": {"float32": 495.0, "bfloat16": 989.0},
         "A100": {"float32": 156.0, "bfloat16": 312.0}}


def gpu_report(args: argparse.Namespace, argv: list[str], workdir: Path) -> dict:
    """End to end at each report size, then the probe (step, bf16, tiles, loop) at the first."""
    report = {"ends": []}
    for width, height in args.report_sizes:
        size_argv = [*argv, "--size", f"{width}x{height}", "--format", "mp4"]
        run = spawn("animator", size_argv, "jax", workdir / f"e2e-{width}x{height}")
        report["ends"].append({"size": [width, height], "run": run,
                               "fps": end_to_end_fps(run),
                               "steady": steady_seconds(run["frame_seconds"])})
    width, height = args.report_sizes[0]
    report["probe"] = spawn("probe", [*argv, "--size", f"{width}x{height}"], "jax", workdir / "probe")
    report["peak_tflops"] = args.peak_tflops
    return report


def run_probe(_side: str, settings: Settings, workdir: Path) -> dict:
    """One octave at the frame's size: a step in float32 and bfloat16, tiles one per call
    against batched, the steps in a `fori_loop` against unrolled. Times in seconds."""
    import jax

    from animator.engine.dream import Dreamer

    size = (settings.height, settings.width)
    ascent = dream_settings(settings, octaves=1, tile_size=None)
    layers = dict(settings.layers)
    dreamer = Dreamer(model=settings.model, weights=settings.weights, layers=layers)
    device = jax.devices()[0]
    result = {"device": f"{device.platform}: {device.device_kind}", "steps": settings.steps,
              "size": list(size), "flops_per_step": frame_flops(settings, octaves=1) / settings.steps}
    result["float32"] = time_octave(dreamer, size, ascent)
    tile = min(settings.tile_size, max(size) // 2)
    batch = max(2, dreamer.tile_batch(*size, tile))
    result["tile"], result["batch"] = tile, batch
    result["one_tile_per_call"] = time_octave(dreamer, size, ascent, tile_size=tile, tile_batch=1)
    result["batched_tiles"] = time_octave(dreamer, size, ascent, tile_size=tile, tile_batch=batch)
    for unroll in (False, True):
        dreamer._octave.unroll = unroll
        result["unrolled" if unroll else "fori_loop"] = time_octave(dreamer, size, ascent)
    half = Dreamer(model=settings.model, weights=settings.weights, layers=layers, precision="bfloat16")
    result["bfloat16"] = time_octave(half, size, ascent)
    return result


def peak_for(device: str, given: float | None) -> dict | None:
    if given:
        return {"float32": given, "bfloat16": 2 * given}
    return next((peak for name, peak in PEAKS.items() if name in device), None)


def format_gpu_report(report: dict) -> str:
    probe = report["probe"]
    steps, (height, width) = probe["steps"], probe["size"]
    peak = peak_for(probe["device"], report["peak_tflops"])

    def per_step(key):
        return probe[key][1] / steps

    def fraction(key, precision):
        if not peak:
            return "- (no known peak: --peak-tflops)"
        achieved = probe["flops_per_step"] / per_step(key) / 1e12
        return f"{achieved:.1f} TFLOP/s = {achieved / peak[precision]:.1%} of {peak[precision]:g}"

    rows = [("device", probe["device"], "")]
    for end in report["ends"]:
        w, h = end["size"]
        rows.append((f"{w}×{h} end to end (MP4)", f"{end['fps']:.2f} frames/s",
                     f"steady {end['steady']:.3f} s/frame, "
                     f"first frame {end['run']['frame_seconds'][0]:.1f} s"))
    rows += [
        (f"one {width}×{height} step, float32", f"{per_step('float32') * 1e3:.1f} ms",
         f"octave of {steps} steps, compiled in {probe['float32'][0]:.1f} s"),
        ("fraction of peak, float32", fraction("float32", "float32"), "model FLOPs ×3 per step"),
        (f"one {width}×{height} step, bfloat16", f"{per_step('bfloat16') * 1e3:.1f} ms",
         f"{per_step('float32') / per_step('bfloat16'):.2f}× float32; {fraction('bfloat16', 'bfloat16')}"),
        (f"tiles of {probe['tile']}: one per call", f"{per_step('one_tile_per_call') * 1e3:.1f} ms/step", ""),
        (f"tiles of {probe['tile']}: {probe['batch']} per call",
         f"{per_step('batched_tiles') * 1e3:.1f} ms/step",
         f"{per_step('one_tile_per_call') / per_step('batched_tiles'):.2f}× one per call"),
        ("steps in a fori_loop", f"{per_step('fori_loop') * 1e3:.1f} ms/step",
         f"compiled in {probe['fori_loop'][0]:.1f} s"),
        ("steps unrolled", f"{per_step('unrolled') * 1e3:.1f} ms/step",
         f"compiled in {probe['unrolled'][0]:.1f} s"),
    ]
    lines = ["| figure | value | notes |", "|---|---|---|"]
    lines += [f"| {label} | {value} | {notes} |" for label, value, notes in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# FLOPs of the dreamed part of the model
# ---------------------------------------------------------------------------------------------


def frame_flops(settings: Settings, octaves: int | None = None) -> float:
    """Conv/dense FLOPs of one frame: per tile 3x the forward pass, summed over octaves and steps
    (the largest `octaves` only, if given)."""
    model = dream_model(settings)
    total = 0.0
    for height, width in octave_sizes(settings)[-(octaves or settings.octaves):]:
        tiles = [(min(settings.tile_size, height - y), min(settings.tile_size, width - x))
                 for y in tile_starts(height, settings.tile_size)
                 for x in tile_starts(width, settings.tile_size)]
        total += settings.steps * sum(3 * forward_flops(model, h, w) for h, w in tiles)
    return total


def forward_flops(model, height: int, width: int) -> float:
    """2·k_h·k_w·c_in·c_out·H_out·W_out summed over the convolutions and dense layers of `model`.

    Spatial sizes are walked through the graph from a `height`×`width` input (strides, padding,
    pooling, zero padding, cropping); layers that keep the size pass it on.
    """
    sizes = {id(tensor): (height, width) for tensor in model.inputs}
    total = 0.0
    for layer in model.layers:
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        size = sizes.get(id(inputs[0])) if inputs else None
        if size is None:
            continue
        out = output_size(layer, size)
        total += layer_flops(layer, out)
        sizes[id(layer.output)] = out
    return total


def _window_out(length: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    if padding == "same":
        return math.ceil(length / stride)
    return max(0, (length - (kernel - 1) * dilation - 1) // stride + 1)


def output_size(layer, size: tuple[int, int]) -> tuple[int, int]:
    """The spatial (height, width) a layer gives for an input of `size`."""
    kind = type(layer).__name__
    if hasattr(layer, "kernel_size") and hasattr(layer, "strides") and "Transpose" not in kind:
        dilation = getattr(layer, "dilation_rate", (1, 1))
        return tuple(_window_out(n, k, s, layer.padding, d) for n, k, s, d in
                     zip(size, layer.kernel_size, layer.strides, dilation))
    if hasattr(layer, "pool_size") and hasattr(layer, "strides"):
        return tuple(_window_out(n, k, s, layer.padding) for n, k, s in
                     zip(size, layer.pool_size, layer.strides))
    if kind == "ZeroPadding2D":
        (top, bottom), (left, right) = layer.padding
        return size[0] + top + bottom, size[1] + left + right
    if kind == "Cropping2D":
        (top, bottom), (left, right) = layer.cropping
        return size[0] - top - bottom, size[1] - left - right
    if kind.startswith("Global") or kind == "Flatten":
        return 1, 1
    return size


def layer_flops(layer, out: tuple[int, int]) -> float:
    """Multiply-add FLOPs (2 per MAC) of one forward pass of a conv or dense layer."""
    kind = type(layer).__name__
    positions = out[0] * out[1]
    if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
        kh, kw = layer.kernel_size
        c_in = layer.input.shape[-1]
        if kind == "Conv2D":
            return 2.0 * kh * kw * (c_in // getattr(layer, "groups", 1)) * layer.filters * positions
        depthwise = 2.0 * kh * kw * c_in * layer.depth_multiplier * positions
        if kind == "DepthwiseConv2D":
            return depthwise
        return depthwise + 2.0 * c_in * layer.depth_multiplier * layer.filters * positions
    if kind == "Dense":
        rank = len(layer.input.shape)
        return 2.0 * layer.input.shape[-1] * layer.units * (positions if rank == 4 else 1)
    return 0.0


# ---------------------------------------------------------------------------------------------
# --precision: each zoo model's step in float32 and bf16, the table precision: auto reads
# ---------------------------------------------------------------------------------------------


def precision_bench(args: argparse.Namespace, argv: list[str]) -> int:
    """Time each model in its own process; print the table; `--save`/`--ship` keep it."""
    from animator.engine import models

    report = {"machine": machine(), "backend": args.backend, "models": {}}
    with tempfile.TemporaryDirectory(prefix="animator-bench-precision-") as scratch:
        for name in args.models or models.names():
            report["models"][name] = spawn("precision", [*argv, "--model", name], args.backend,
                                           Path(scratch) / name)
    kind = next(iter(report["models"].values()))["kind"]
    report["kind"] = kind
    print(format_precision(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    shipped = Path(__file__).resolve().parents[1] / "animator" / "engine"
    for wanted, folder in ((args.save, None), (args.ship, shipped)):
        if wanted:
            print(f"bench: wrote {save_precision(report, folder)}", file=sys.stderr)
    return 0


def run_precision(_side: str, settings: Settings, workdir: Path) -> dict:
    """One model's gradient step at each size, float32 and (where bf16 is native, or asked for)
    bf16: ms per step, the mean of a few steps after a first call that traces."""
    from animator.engine import backend
    from animator.engine.dream import Dreamer

    args = build_parser().parse_known_args()[0]
    kind, why = backend.device_kind()
    precisions = ["float32", "bfloat16"] if kind != "float32" or args.emulated_bf16 else ["float32"]
    ascent = dream_settings(settings, steps=2, tile_size=None)
    times = {}
    for precision in precisions:
        dreamer = Dreamer(model=settings.model, weights="none", precision=precision)
        for side in args.precision_sizes:
            _, seconds, _ = time_octave(dreamer, (side, side), ascent, repeats=2)
            times.setdefault(str(side), {})[precision] = round(1000 * seconds / ascent.steps, 1)
    return {"kind": kind, "why": why, "times": times}


def format_precision(report: dict) -> str:
    m = report["machine"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, {m['device']}; backend {report['backend']}",
             f"device kind: {report['kind']} ({next(iter(report['models'].values()))['why']})",
             "| model | size | float32 ms/step | bf16 ms/step | bf16 speed-up |", "|---|---|---|---|---|"]
    for name, result in report["models"].items():
        for side, times in result["times"].items():
            half = times.get("bfloat16")
            cells = [f"{half:.0f}", f"{times['float32'] / half:.2f}x"] if half else ["(not native)", "-"]
            lines.append(f"| {name} | {side}² | {times['float32']:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_precision(report: dict, folder: Path | None) -> Path:
    """Merge the figures into the precision table in `folder` (None: this machine's own, in the
    user's cache folder), under the device kind and backend they were measured on."""
    from animator.engine import backend
    from animator.engine.compile_cache import user_cache_folder

    path = (folder or user_cache_folder()) / backend.PRECISION_TABLE
    table = json.loads(path.read_text()) if path.is_file() else {}
    kind = report["kind"]
    measured = table.setdefault(kind, {}).setdefault(report["backend"], {})
    for name, result in report["models"].items():
        for side, times in result["times"].items():
            if "bfloat16" in times:
                measured.setdefault(name, {})[side] = times
    m = report["machine"]
    table.setdefault("measured_on", {})[kind] = f"{m['cores']}-core {m['cpu']} ({m['device']})"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table, indent=2) + "\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
