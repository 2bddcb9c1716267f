#!/usr/bin/env python
"""Seconds per dreamed frame of the engine alone (no transforms, no writing), for comparing two
checkouts of the engine on one machine: run it alternately against each, several times, and
compare the minima (a loaded machine makes single runs noisy).

    PYTHONPATH=old python scripts/dream_speed.py; PYTHONPATH=. python scripts/dream_speed.py

inception_v3 with random weights, `mixed3` + `mixed5`×1.5, 192x192, 2 octaves of 8 steps.
Prints JSON: the minimum and median seconds of 4 frames after a first (compiling) one.
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np


def main() -> None:
    import keras

    from animator.engine.dream import Dreamer, DreamSettings

    dreamer = Dreamer(model="inception_v3", weights="none", layers={"mixed3": 1.0, "mixed5": 1.5})
    frame = np.random.default_rng(0).uniform(0, 255, (192, 192, 3)).astype(np.float32)
    settings = DreamSettings(octaves=2, steps=8, jitter=16)
    keras.ops.convert_to_numpy(dreamer.dream_frame(frame, settings, np.random.default_rng(0))[0])
    times = []
    for seed in range(4):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(dreamer.dream_frame(frame, settings, np.random.default_rng(seed))[0])
        times.append(time.perf_counter() - start)
    print(json.dumps({"backend": keras.backend.backend(), "min_s": round(min(times), 3),
                      "median_s": round(statistics.median(times), 3)}))


if __name__ == "__main__":
    main()
