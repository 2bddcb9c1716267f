"""The soundtrack's feature extraction on a 3-minute track: time and peak memory, against decoding.

Synthesises a track with `make_music.groove` (90 bars at 120 BPM: 3 minutes, AAC in .m4a), then
times, each in a fresh subprocess (so that neither inherits the other's imports or caches):

- **decode**: `animator.media.audio.decode` alone, the ffmpeg pipe read to the end (the floor);
- **analyse**: `animator.media.audio.analyse` at 30 fps: decoding, spectra, librosa's onset strength
  and beat tracking, the per-frame features; librosa's import is timed apart (its numba
  functions compile as it is imported).

It prints seconds (wall and CPU: on a shared machine the wall clock counts the others' work too),
the ratio to decoding and each side's peak RSS; the target is under 10 s for the whole of
`analyse`, import included.

    python scripts/bench_audio.py
    python scripts/bench_audio.py --seconds 600 --json bench_audio.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from animator.media import audio
began = time.perf_counter()
if {side!r} == "decode":
    samples = sum(len(chunk) for chunk in audio.decode(audio.probe({track!r})))
    result = {{"samples": samples}}
    imported = 0.0
else:
    import librosa.beat, librosa.onset  # noqa: F401
    imported = time.perf_counter() - began
    features = audio.analyse({track!r}, fps=30)
    result = {{"frames": features.frames, "tempo": features.tempo, "beats": len(features.beats)}}
usage = resource.getrusage(resource.RUSAGE_SELF)
result.update(seconds=time.perf_counter() - began, imported=imported,
              cpu_seconds=usage.ru_utime + usage.ru_stime,
              peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(result))
"""


def run(side: str, track: Path) -> dict:
    code = CHILD.format(root=str(ROOT), side=side, track=str(track))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180, help="the track's length")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        track = Path(folder) / "track.m4a"
        # made in a subprocess: Linux counts a parent's peak memory in its children's peak RSS
        subprocess.run([sys.executable, str(ROOT / "scripts/make_music.py"), "--out", str(track),
                        "--bars", str(max(1, round(args.seconds / 2)))], check=True,
                       capture_output=True)
        decode, analyse = run("decode", track), run("analyse", track)
    report = {"cpu": cpu_name(), "cores": os.cpu_count(), "track_seconds": args.seconds,
              "decode": decode, "analyse": analyse,
              "ratio_to_decode": analyse["seconds"] / decode["seconds"]}
    print(f"{args.seconds:g} s track on {report['cpu']} ({report['cores']} cores)")
    print(f"  decode:  {decode['seconds']:6.2f} s ({decode['cpu_seconds']:.2f} s of CPU), peak RSS "
          f"{decode['peak_rss_mb']:.0f} MB")
    print(f"  analyse: {analyse['seconds']:6.2f} s ({analyse['imported']:.2f} s of it importing "
          f"librosa; {analyse['cpu_seconds']:.2f} s of CPU), peak RSS {analyse['peak_rss_mb']:.0f} MB, "
          f"{analyse['tempo']:.1f} BPM, "
          f"{analyse['beats']} beats, {analyse['frames']} frames at 30 fps")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    verdict = lambda seconds: "met" if seconds < 10 else "NOT met"  # noqa: E731
    print(f"  analyse / decode: {report['ratio_to_decode']:.1f}x; target under 10 s: wall "
          f"{verdict(analyse['seconds'])}, CPU {verdict(analyse['cpu_seconds'])} "
          f"(load average {load:.1f} on {report['cores']} cores)")
    report["load_average"] = load
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
