"""`bench.py --video`: seconds per frame and flicker of a dreamed clip, flow on and off, every: 3.

One process renders the demo clip (`demo_clip.py`: a patch sliding over a still photo, at
`--size`, `--frames` frames) four ways with the same dream settings:

- scratch: `blend: 0`, each frame dreamed from the input alone (the flicker baseline);
- flow: `blend: 0.8`, the dream carried along Farneback flow;
- no flow: `blend: 0.8`, `flow: none`, carried in place;
- every 3: flow, a full dream every third frame, the others carried with `carry_steps: 2`.

Seconds per frame leave out the first frame (model build, tracing). The flicker figure is the mean
absolute change (grey levels) of the still background between consecutive output frames, away
from the patch's path. Ratios are against `scratch` in the same run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    "scratch": {"blend": 0.0},
    "flow": {"blend": 0.8},
    "no flow": {"blend": 0.8, "flow": "none"},
    "every 3": {"blend": 0.8, "every": 3, "carry_steps": 2},
}
FPS = 12
PATH_MARGIN = 6  # pixels around the patch's path left out of the still background


def run(args, workdir: Path) -> dict:
    """Render the variants, print the table, return the report."""
    import demo_clip

    size = tuple(args.size)
    clip = demo_clip.write_clip(workdir / "clip.mp4", size, args.frames, FPS, tone=False)
    still = ~_dilate(demo_clip.patch_path(size, args.frames, demo_clip.SPEED), PATH_MARGIN)
    results = {name: render_variant(args, clip, workdir / name.replace(" ", "_"), options, still)
               for name, options in VARIANTS.items()}
    scratch = results["scratch"]
    for result in results.values():
        result["speedup"] = scratch["seconds_per_frame"] / result["seconds_per_frame"]
        result["flicker_ratio"] = scratch["flicker"] / max(result["flicker"], 1e-9)
    report = {"size": size, "frames": args.frames, "model": args.model, "weights": args.weights,
              "octaves": args.octaves, "steps": args.steps, "variants": results}
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


def render_variant(args, clip: Path, workdir: Path, options: dict, still: np.ndarray) -> dict:
    from PIL import Image

    from animator import config as config_module
    from animator.renderer.loop import render

    layers = args.layers or None
    data = {"input": {"video": str(clip)}, "seed": args.seed, "video": options,
            "dream": {"model": args.model, "weights": args.weights, "layers": layers,
                      "octaves": args.octaves, "octave_scale": args.octave_scale,
                      "steps": args.steps, "step_size": args.step_size, "jitter": args.jitter},
            "output": {"path": str(workdir / "dreamed.mp4")}}
    config = config_module.from_mapping(data, workdir)
    stamps = [time.perf_counter()]
    render(config, force=True, progress=lambda *_: stamps.append(time.perf_counter()))
    seconds = np.diff(stamps)[1:] if len(stamps) > 2 else np.diff(stamps)
    frames = [np.asarray(Image.open(p), np.float32) for p in sorted(config.frames_dir.glob("0*.png"))]
    changes = [np.abs(a - b)[still].mean() for a, b in zip(frames, frames[1:])]
    return {"options": options, "seconds_per_frame": float(np.mean(seconds)),
            "flicker": float(np.mean(changes))}


def format_table(report: dict) -> str:
    width, height = report["size"]
    lines = [f"video: {width}x{height}, {report['frames']} frames, {report['model']} "
             f"({report['weights'] or 'default weights'}), {report['octaves']} octaves x "
             f"{report['steps']} steps",
             f"{'variant':10s} {'s/frame':>8s} {'speedup':>8s} {'flicker':>8s} {'less flicker':>13s}"]
    for name, result in report["variants"].items():
        lines.append(f"{name:10s} {result['seconds_per_frame']:8.3f} {result['speedup']:7.2f}x "
                     f"{result['flicker']:8.2f} {result['flicker_ratio']:12.1f}x")
    return "\n".join(lines)


def _dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=pixels)
