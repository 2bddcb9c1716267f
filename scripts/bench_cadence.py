"""dream.cadence 1, 2, 3: a render's seconds, its flicker, and whether the cadence pulses.

    python scripts/bench_cadence.py                        # vgg16-hed, 256x192, 24 frames of zoom
    python scripts/bench_cadence.py --cadences 1 3 --frames 12 --repeat 2 --json cadence.json

One process renders the same animation (the bundled vgg16-hed, a photo, `zoom: 1.05` a frame) at
each cadence, interleaved `--repeat` times (1, 2, 3, 1, 2, 3, ...) so that a busy machine slows
every cadence alike. The model is built and every octave size traced once, by a 2-frame warm-up
render, before any timed one: the seconds are those of whole renders (dreams, transforms, PNGs,
resume states, the GIF), the medians of the repeats. Speed-up: cadence 1's seconds over the
cadence's, in the same run.

Flicker: the mean absolute difference (grey levels) between each frame and the previous frame
carried by the transforms (the config's chain applied to the previous PNG), over the frame less a
`--margin` of pixels (the zoom fills its edges from outside the picture), averaged over frames
1..N-1. Pulse: that difference averaged per phase of the cadence (frames 1, 2, 3 after a dream),
the largest phase over the smallest: 1.0 is even, and a cadence that changed the picture only at
its dreamed frames would show a pulse of many times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    report = measure(args)
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def parse(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cadences", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--size", type=int, nargs=2, default=[256, 192], metavar=("W", "H"))
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--octaves", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--step-size", type=float, default=1.5)
    parser.add_argument("--zoom", type=float, default=1.05)
    parser.add_argument("--model", default="vgg16-hed")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--margin", type=int, default=16, help="edge pixels left out of the flicker")
    parser.add_argument("--input", default=None, help="image (default: scikit-image's chelsea)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_cadence"))
    parser.add_argument("--json", type=Path, default=None)
    return parser.parse_args(argv)


def animation(args, cadence: int, frames: int, folder: Path) -> dict:
    return {"input": args.input or photo(), "size": list(args.size), "frames": frames, "seed": 1,
            "dream": {"model": args.model, "octaves": args.octaves, "steps": args.steps,
                      "step_size": args.step_size, "cadence": cadence},
            "transforms": [{"zoom": {"factor": args.zoom}}],
            "output": {"path": str(folder / "out.gif")}}


def photo() -> str:
    import skimage

    return str(Path(skimage.__file__).parent / "data" / "chelsea.png")


def measure(args) -> dict:
    from animator import config as config_module
    from animator.renderer.loop import run

    kept = {}

    def dreamer(**kwargs):  # one Dreamer for every render: built and traced once, by the warm-up
        from animator.engine.dream import Dreamer

        key = repr(sorted(kwargs.items()))
        if key not in kept:
            kept[key] = Dreamer(**kwargs)
        return kept[key]

    def render(cadence: int, frames: int, folder: Path):
        config = config_module.from_mapping(animation(args, cadence, frames, folder), folder)
        began = time.perf_counter()
        for _ in run(config, force=True, dreamer=dreamer):
            pass
        return config, time.perf_counter() - began

    render(1, 2, args.workdir / "warm-up")
    seconds = {cadence: [] for cadence in args.cadences}
    configs = {}
    for _ in range(args.repeat):  # interleaved: a busy machine slows every cadence alike
        for cadence in args.cadences:
            folder = args.workdir / f"cadence{cadence}"
            configs[cadence], taken = render(cadence, args.frames, folder)
            seconds[cadence].append(taken)
    results = {cadence: {"seconds": float(np.median(seconds[cadence])), "runs": seconds[cadence],
                         **steadiness(configs[cadence], args.margin)} for cadence in args.cadences}
    base = results[args.cadences[0]]
    for result in results.values():
        result["speedup"] = base["seconds"] / result["seconds"]
        result["flicker_ratio"] = result["flicker"] / base["flicker"]
    return {"machine": machine(), "size": list(args.size), "frames": args.frames,
            "model": args.model, "octaves": args.octaves, "steps": args.steps,
            "zoom": args.zoom, "repeat": args.repeat, "cadences": results}


def steadiness(config, margin: int) -> dict:
    """Flicker and pulse of a finished render's frames (see the module docstring)."""
    from PIL import Image

    from animator.renderer.cadence import Dreams
    from transforms import Context

    frames = [np.asarray(Image.open(p), np.float32) for p in sorted(config.frames_dir.glob("0*.png"))]
    size = (frames[0].shape[1], frames[0].shape[0])
    inside = (slice(margin, -margin), slice(margin, -margin))
    dreams, by_phase = Dreams(config), {}
    for index in range(1, len(frames)):
        ctx = Context(index - 1, len(frames), size, np.random.default_rng(0))
        carried = np.asarray(config.chain.apply(frames[index - 1], ctx))
        change = float(np.abs(frames[index] - carried)[inside].mean())
        by_phase.setdefault(index - dreams.span(index).previous, []).append(change)
    phases = {phase: float(np.mean(changes)) for phase, changes in sorted(by_phase.items())}
    changes = [change for values in by_phase.values() for change in values]
    return {"flicker": float(np.mean(changes)), "phases": phases,
            "pulse": max(phases.values()) / min(phases.values())}


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = " ".join(f for f in line.split(":", 1)[1].split()
                                 if f.startswith(("avx", "amx", "fma")))
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "flags": flags}


def format_table(report: dict) -> str:
    width, height = report["size"]
    host = report["machine"]
    lines = [f"cadence: {report['model']} {width}x{height}, {report['frames']} frames of zoom "
             f"{report['zoom']}, {report['octaves']} octaves x {report['steps']} steps, median of "
             f"{report['repeat']}; {host['cpu']}, {host['cores']} cores ({host['flags']})",
             "| cadence | s/render | speed-up | flicker (grey levels) | flicker vs cadence 1 | "
             "change by phase | pulse |", "|---|---|---|---|---|---|---|"]
    for cadence, result in report["cadences"].items():
        phases = " / ".join(f"{value:.2f}" for value in result["phases"].values())
        lines.append(f"| {cadence} | {result['seconds']:.1f} | {result['speedup']:.2f}x | "
                     f"{result['flicker']:.2f} | {result['flicker_ratio']:.2f}x | {phases} | "
                     f"{result['pulse']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
