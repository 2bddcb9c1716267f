"""Synthesise configs/audio/groove.m4a: a drum pattern and a bass line, numpy only.

The repository ships no third-party audio: this makes the soundtrack of configs/music.yaml, 8 s at
120 BPM (kick on 1 and 3, snare on 2 and 4, hi-hats on the eighths, a bass line under the kicks),
and encodes it as AAC with the ffmpeg that imageio-ffmpeg ships (about 100 KB).

    python scripts/make_music.py                      # configs/audio/groove.m4a
    python scripts/make_music.py --out x.wav --bars 2
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

RATE = 44_100
BPM = 120
BASS_NOTES = [41.2, 41.2, 49.0, 55.0, 41.2, 41.2, 61.7, 55.0]  # Hz, one per beat: E1, G1, A1, B1


def envelope(seconds: float, decay: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return np.exp(-t / decay)


def kick(rng) -> np.ndarray:
    t = np.arange(round(0.35 * RATE)) / RATE
    pitch = 50 + 110 * np.exp(-t / 0.03)  # the drop that makes a kick
    return np.sin(2 * np.pi * np.cumsum(pitch) / RATE) * envelope(0.35, 0.08)


def snare(rng) -> np.ndarray:
    t = np.arange(round(0.2 * RATE)) / RATE
    body = 0.4 * np.sin(2 * np.pi * 190 * t) * envelope(0.2, 0.04)
    return body + 0.6 * rng.standard_normal(len(t)) * envelope(0.2, 0.05)


def hihat(rng) -> np.ndarray:
    noise = rng.standard_normal(round(0.05 * RATE))
    bright = np.diff(noise, prepend=0.0)  # a first difference: mostly treble
    return 0.25 * bright * envelope(0.05, 0.012)


def bass(frequency: float, seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    tone = np.sin(2 * np.pi * frequency * t) + 0.3 * np.sin(4 * np.pi * frequency * t)
    return 0.5 * tone * np.minimum(1.0, t / 0.01) * envelope(seconds, 0.35)


def groove(bars: int, seed: int = 0) -> np.ndarray:
    """`bars` bars of 4/4: the drums and the bass, mixed to peak at 0.9."""
    rng = np.random.default_rng(seed)
    beat = 60 / BPM
    track = np.zeros(round((bars * 4 * beat + 0.5) * RATE))

    def add(sound: np.ndarray, at: float) -> None:
        start = round(at * RATE)
        end = min(len(track), start + len(sound))
        track[start:end] += sound[: end - start]

    for k in range(bars * 4):
        at = k * beat
        add(kick(rng) if k % 2 == 0 else snare(rng), at)
        add(hihat(rng), at)
        add(hihat(rng), at + beat / 2)
        add(bass(BASS_NOTES[k % len(BASS_NOTES)], beat * 0.9), at)
    return 0.9 * track / np.abs(track).max()


def write(samples: np.ndarray, out: Path) -> None:
    """A WAV, or through ffmpeg anything else its suffix names (.m4a: AAC at 96 kb/s)."""
    import imageio_ffmpeg

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        wav = out if out.suffix == ".wav" else Path(folder) / "track.wav"
        with wave.open(str(wav), "wb") as stream:
            stream.setnchannels(1)
            stream.setsampwidth(2)
            stream.setframerate(RATE)
            stream.writeframes((samples * 32767).astype("<i2").tobytes())
        if wav != out:
            subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
                            "-y", "-i", str(wav), "-c:a", "aac", "-b:a", "96k", "-map_metadata",
                            "-1", "-fflags", "+bitexact", str(out)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent.parent / "configs/audio/groove.m4a"))
    parser.add_argument("--bars", type=int, default=4, help="bars of 4/4 at 120 BPM (2 s each)")
    args = parser.parse_args()
    write(groove(args.bars), Path(args.out))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
