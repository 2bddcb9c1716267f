"""Peak host memory of dreaming one 3840x2160 frame on the CPU (the tiled path).

    python scripts/memory_4k.py [--model inception_v3] [--steps 2] [--octaves 1]

Prints the tile size chosen from the memory budget, the seconds, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="inception_v3")
    parser.add_argument("--octaves", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--width", type=int, default=3840)
    parser.add_argument("--height", type=int, default=2160)
    args = parser.parse_args(argv)

    from animator.engine.dream import Dreamer, DreamSettings
    from animator.media.images import noise_image

    frame = noise_image((args.width, args.height), seed=0)
    dreamer = Dreamer(model=args.model, weights="none")
    settings = DreamSettings(octaves=args.octaves, steps=args.steps)
    began = time.monotonic()
    dreamer.dream(frame, settings)
    result = {
        "size": f"{args.width}x{args.height}",
        "model": args.model,
        "tile_size": dreamer.tile_size(args.height, args.width, settings),
        "memory_budget_mb": dreamer.memory_budget >> 20,
        "seconds": round(time.monotonic() - began, 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
