"""The soundtrack: a track decoded through ffmpeg as a stream, and its features at each frame.

`probe` reads what ffmpeg says of a file and refuses what holds no sound: a missing, unreadable
or empty file, one without an audio stream. `decode` streams the track's sound (mono, 22 050 Hz,
float32) from an ffmpeg pipe a few seconds at a time, so that memory stays bounded by the chunk
and the per-hop summaries (a 3-minute track keeps about 4 MB), never the whole track. `analyse`
turns a cut of the track into one value per video frame for each of `FEATURES`, the names a
schedule may use beside `t`:

- `loudness`: the RMS amplitude of the frame's sound, 1 at the loudest frame of the cut;
- `onset`: onset strength (librosa's spectral flux of the log-mel spectrum), 1 at the strongest;
- `beat`: 1 on each frame where librosa's beat tracker puts a beat, falling linearly to 0 over
  `beat_decay` frames;
- `bass`, `mid`, `treble`: the RMS amplitude of 20-250 Hz, 250-4000 Hz and 4000 Hz up, each 1
  at its own loudest frame (a band 60 dB below the loudest band's peak stays near 0).

`loudness`, `onset` and the bands are smoothed: a rise closes 90% of its way in `attack` frames,
a fall in `release` frames (0: at once). `mux` puts the same cut of the track into an MP4 (AAC)
or WebM (Opus) video. librosa (the `audio` extra) is imported only by `analyse`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from animator.media import images
from animator.media.clip import FFMPEG_TIMEOUT_S, last_line, run_ffmpeg, seconds_of, trim_params
from animator.settings.errors import InputError, OutputError, UserError
from animator.settings.schedule import SIGNALS

__all__ = ["FEATURES", "Features", "Track", "analyse", "decode", "mux", "plot", "probe", "table"]

FEATURES = SIGNALS  # declared with the schedule language, whose variables they are
SMOOTHED = ("loudness", "onset", "bass", "mid", "treble")
BANDS = {"bass": (20.0, 250.0), "mid": (250.0, 4000.0), "treble": (4000.0, None)}  # Hz
SAMPLE_RATE = 22_050  # Hz: the analysis rate; ffmpeg resamples to it
N_FFT = 1024  # samples: 46 ms windows
HOP = 256  # samples: 11.6 ms between spectra, so a beat lands within a hop
N_MELS = 64
CHUNK_SAMPLES = SAMPLE_RATE * 8  # read from the pipe at a time
MAX_BEAT_SECONDS = 2.0  # the longest beat the tempo guess considers: 30 BPM
SILENCE = 1e-5  # of the loudest hop's power (-50 dB): no beat is heard below it
BAND_FLOOR = 1e-3  # a band's peak counts as at least this share of the loudest band's (-60 dB)
VERSION = 1  # of the features' definition: part of a render's fingerprint
AUDIO_BITRATE = {"mp4": ("aac", "192k"), "webm": ("libopus", "128k")}
EXTRA_MISSING = "audio features need librosa: pip install 'deepdream-animator[audio]'"

_STREAM = re.compile(r"^\s*Stream #\d+:\d+.*?: (Video|Audio|Subtitle|Data|Attachment): (\w+)",
                     re.MULTILINE)
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")


@dataclass(frozen=True)
class Track:
    """A file's sound as ffmpeg sees it: its codec and duration in seconds (0: unknown)."""

    path: Path
    codec: str
    duration: float


@dataclass(frozen=True)
class Features:
    """A cut's features, one value per frame of a render at `fps`, and its beats.

    `values[name]` holds `frames` floats in 0..1 (0 past the cut's end); `beats` the frames of
    the beats; `tempo` the beats per minute (0 when fewer than two beats); `seconds` the cut's
    length of sound.
    """

    fps: float
    seconds: float
    tempo: float
    beats: np.ndarray
    values: dict[str, np.ndarray] = field(repr=False)

    @property
    def frames(self) -> int:
        return len(self.values["loudness"])

    def by_frame(self, reverse: bool = False) -> dict[str, np.ndarray]:
        """Each feature's value for each frame rendered: the frame's own moment of the sound; or,
        where the output plays the frames last to first (`output.reverse`, with or without its
        ping-pong), the moment at which the frame is first seen, so that the picture still moves
        with the sound, which plays forward."""
        if not reverse:
            return self.values
        return {name: value[::-1] for name, value in self.values.items()}

    def save(self, path: Path) -> None:
        """Write the features to `path` (.npz), atomically."""
        def write(stream):
            np.savez(stream, fps=self.fps, seconds=self.seconds, tempo=self.tempo, beats=self.beats,
                     **{f"value_{name}": value for name, value in self.values.items()})

        images.write_atomic(path, write)

    @classmethod
    def load(cls, path: Path) -> Features | None:
        """The features `save` wrote to `path`, or None where it is missing or damaged."""
        try:
            with np.load(path) as data:
                values = {name: data[f"value_{name}"] for name in FEATURES}
                return cls(float(data["fps"]), float(data["seconds"]), float(data["tempo"]),
                           data["beats"], values)
        except (OSError, KeyError, ValueError, EOFError):
            return None


def frame_count(seconds: float, fps: float) -> int:
    """Frames of a render that lasts as long as `seconds` of sound at `fps` (at least 1)."""
    return max(1, round(seconds * fps))


# --- decoding -----------------------------------------------------------------------------------


def probe(path: str | Path) -> Track:
    """What the file at `path` holds of sound; `InputError` if it holds none that can be read."""
    path = Path(path)
    images.check_is_file(path, "audio")
    text = _ffmpeg(["-i", str(path)], path).stderr
    streams = _STREAM.findall(text)
    if path.stat().st_size == 0 or not streams and re.search(r"^Input #0", text, re.MULTILINE):
        raise InputError(f"audio '{path}' holds nothing (it is empty): give a file with sound")
    if not streams:
        raise InputError(f"audio '{path}' is not a readable sound file ({last_line(text)}): give "
                         "a file ffmpeg decodes (MP3, WAV, FLAC, M4A, a video with sound)")
    codec = next((codec for kind, codec in streams if kind == "Audio"), None)
    if codec is None:
        kinds = ", ".join(dict.fromkeys(kind.lower() for kind, _ in streams))
        raise InputError(f"audio '{path}' has no audio stream (only {kinds}): give a file with sound")
    duration = _DURATION.search(text)
    return Track(path, codec, seconds_of(*duration.groups()) if duration else 0.0)


def check_cut(track: Track, start: float, end: float | None) -> float:
    """The length in seconds of the cut from `start` to `end` (None: the track's end); an
    `InputError` where it reaches past the track's end."""
    if track.duration and start >= track.duration:
        raise InputError(f"audio '{track.path}': start {start:g} s is past the track's end "
                         f"({track.duration:g} s): give an earlier start")
    if end is not None and track.duration and end > track.duration + 1e-3:
        raise InputError(f"audio '{track.path}': end {end:g} s is past the track's end "
                         f"({track.duration:g} s): give an end up to {track.duration:g}")
    return (end if end is not None else track.duration) - start


def decode(track: Track, start: float = 0.0, end: float | None = None) -> Iterator[np.ndarray]:
    """The cut's sound, mono float32 at `SAMPLE_RATE`, in chunks of up to `CHUNK_SAMPLES`,
    streamed from ffmpeg. Raises `InputError` if ffmpeg fails or gives no sound at all."""
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
               *trim_params(start, end), "-i", str(track.path), "-map", "0:a:0", "-vn",
               "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = 0
    try:
        while chunk := process.stdout.read(CHUNK_SAMPLES * 4):
            samples = np.frombuffer(chunk[: len(chunk) // 4 * 4], np.float32)
            got += samples.size
            yield samples
        error = process.stderr.read().decode("utf-8", "replace")
        if process.wait() != 0:
            raise InputError(f"audio '{track.path}' cannot be decoded ({last_line(error)}): "
                             "check the file, or convert it to WAV")
        if got == 0:
            raise InputError(f"audio '{track.path}' holds no sound between {start:g} s and "
                             f"{'its end' if end is None else f'{end:g} s'}: give other times")
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()


# --- features -----------------------------------------------------------------------------------


@dataclass
class _Spectra:
    """Per-hop summaries of the sound: total and band power, and the log-mel spectrum."""

    power: list = field(default_factory=list)
    bands: list = field(default_factory=list)
    mel: list = field(default_factory=list)

    def add(self, frames: np.ndarray, mel_basis: np.ndarray, band_masks: np.ndarray) -> None:
        spectrum = np.abs(np.fft.rfft(frames * np.hanning(N_FFT + 1)[:N_FFT], axis=1)) ** 2
        self.power.append(spectrum.sum(axis=1))
        self.bands.append(spectrum @ band_masks)
        self.mel.append((spectrum @ mel_basis.T).astype(np.float32))

    def joined(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.concatenate(self.power), np.concatenate(self.bands),
                np.concatenate(self.mel).T)


def _spectra(chunks: Iterator[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(power, band power, mel power) per hop; hop i is centred on sample i × HOP (the sound is
    padded with N_FFT / 2 of silence at each end, as librosa's centred frames are)."""
    import librosa

    mel_basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
    frequencies = np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE)
    band_masks = np.stack([(frequencies >= low) & (frequencies < (high or np.inf))
                           for low, high in BANDS.values()], axis=1).astype(np.float64)
    spectra, pending = _Spectra(), np.zeros(N_FFT // 2, np.float32)
    for chunk in _with_tail(chunks):
        pending = np.concatenate([pending, chunk])
        count = (len(pending) - N_FFT) // HOP + 1
        if count <= 0:
            continue
        frames = np.lib.stride_tricks.sliding_window_view(pending, N_FFT)[::HOP][:count]
        spectra.add(frames.astype(np.float64), mel_basis, band_masks)
        pending = pending[count * HOP:]
    return spectra.joined()


def _with_tail(chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield from chunks
    yield np.zeros(N_FFT // 2, np.float32)


def analyse(path: str | Path, fps: float, start: float = 0.0, end: float | None = None,
            frames: int | None = None, attack: float = 0.0, release: float = 4.0,
            beat_decay: int = 4) -> Features:
    """The features of the track at `path` cut from `start` to `end` (seconds; None: its end),
    for `frames` frames at `fps` (None: as many as the cut lasts). `attack` and `release` are in
    frames (see the module's docstring), `beat_decay` the frames over which a beat falls to 0.

    Raises `InputError` for a file without readable sound or a cut past its end, and a
    `UserError` naming the `audio` extra without librosa.
    """
    librosa = _librosa()
    track = probe(path)
    check_cut(track, start, end)
    power, bands, mel = _spectra(decode(track, start, end))
    seconds = (len(power) - 1) * HOP / SAMPLE_RATE
    frames = frame_count(seconds, fps) if frames is None else frames
    which = np.floor(np.arange(len(power)) * HOP / SAMPLE_RATE * fps).astype(np.int64)
    onset = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=SAMPLE_RATE,
                                         hop_length=HOP, n_fft=N_FFT)
    raw = {"loudness": np.sqrt(_per_frame(power, which, frames, np.mean)),
           "onset": _per_frame(onset, which, frames, np.max)}
    band_rms = [np.sqrt(_per_frame(bands[:, k], which, frames, np.mean)) for k in range(len(BANDS))]
    floor = BAND_FLOOR * max((float(b.max()) for b in band_rms), default=0.0)
    raw.update({name: _unit(b, floor) for name, b in zip(BANDS, band_rms, strict=True)})
    raw["loudness"], raw["onset"] = _unit(raw["loudness"]), _unit(raw["onset"])
    values = {name: smooth(raw[name], attack, release) for name in SMOOTHED}
    beat_times = librosa.beat.beat_track(onset_envelope=onset, sr=SAMPLE_RATE, hop_length=HOP,
                                         bpm=_tempo_guess(onset, librosa), units="time",
                                         trim=False)[1]
    beat_times = _heard(np.asarray(beat_times), power)
    beats = np.unique(np.floor(beat_times * fps).astype(np.int64))
    values["beat"] = beat_pulses(beats, frames, beat_decay)
    return Features(float(fps), seconds, tempo_of(beat_times), beats[beats < frames],
                    {name: values[name] for name in FEATURES})


def _tempo_guess(onset: np.ndarray, librosa) -> float:
    """Beats per minute for the beat tracker to start from: the onset envelope's autocorrelation
    (one FFT) under librosa's prior (log-normal about 120 BPM, an octave wide). librosa's own
    estimate autocorrelates every 8.9 s window apart, 30 KB of memory a hop (500 MB for 3 min)."""
    lags = min(len(onset), int(MAX_BEAT_SECONDS * SAMPLE_RATE / HOP))
    correlation = librosa.autocorrelate(onset - onset.mean(), max_size=lags)
    bpm = librosa.tempo_frequencies(lags, hop_length=HOP, sr=SAMPLE_RATE)[1:]
    prior = np.exp(-0.5 * (np.log2(bpm / 120.0)) ** 2) * (bpm >= 30) * (bpm <= 300)
    score = np.maximum(correlation[1:], 0.0) * prior
    return float(bpm[np.argmax(score)]) if score.max(initial=0.0) > 0 else 120.0


def _heard(beat_times: np.ndarray, power: np.ndarray) -> np.ndarray:
    """The beats with sound near them: untrimmed, the tracker goes on beating into silence
    (trimmed, it drops the first beat of a track that starts on one)."""
    hops = np.round(beat_times * SAMPLE_RATE / HOP).astype(np.int64)
    near = np.array([power[max(0, h - 2): h + 3].max(initial=0.0) for h in hops])
    return beat_times[near > SILENCE * power.max(initial=0.0)]


def _librosa():
    try:
        import librosa
    except ModuleNotFoundError as error:
        raise UserError(EXTRA_MISSING) from error
    return librosa


def _per_frame(values: np.ndarray, which: np.ndarray, frames: int, reduce) -> np.ndarray:
    """Each frame's hops (`which`: the frame of each hop) reduced to one value (`np.mean` or
    `np.max`); a frame shorter than a hop takes the value between its neighbours; frames past
    the sound are 0."""
    keep = which < frames
    values, which = values[keep], which[keep]
    if not len(values):
        return np.zeros(frames)
    if reduce is np.max:
        out = np.zeros(frames)
        np.maximum.at(out, which, values)
    else:
        out = np.bincount(which, values, frames) / np.maximum(np.bincount(which, None, frames), 1)
    present = np.unique(which)
    out[: present[-1] + 1] = np.interp(np.arange(present[-1] + 1), present, out[present])
    return out


def _unit(values: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """`values` over their peak (at least `floor`): 0..1; all zeros stay zeros."""
    peak = max(float(values.max(initial=0.0)), floor)
    return values / peak if peak > 0 else np.zeros_like(values)


def smooth(values: np.ndarray, attack: float, release: float) -> np.ndarray:
    """An envelope follower: a rise closes 90% of its way in `attack` frames, a fall in
    `release` frames (0: at once); it starts from silence (0)."""
    up, down = (0.1 ** (1.0 / frames) if frames > 0 else 0.0 for frames in (attack, release))
    out, level = np.empty(len(values)), 0.0
    for index, value in enumerate(values):
        keep = up if value > level else down
        level = value + (level - value) * keep
        out[index] = level
    return out


def beat_pulses(beats: np.ndarray, frames: int, decay: int) -> np.ndarray:
    """1 on each frame of `beats`, falling linearly to 0 over `decay` frames after it."""
    out = np.zeros(frames)
    for beat in beats[(beats >= 0) & (beats < frames)]:
        span = np.arange(beat, min(frames, beat + decay))
        out[span] = np.maximum(out[span], 1.0 - (span - beat) / decay)
    return out


def tempo_of(beat_times) -> float:
    """Beats per minute from the beats' times (seconds): the slope of a line through them, finer
    than librosa's tempogram bins (2.5% apart at 120 BPM with this hop); 0 for under two."""
    times = np.asarray(beat_times, dtype=np.float64)
    if len(times) < 2:
        return 0.0
    slope = np.polyfit(np.arange(len(times)), times, 1)[0]
    return 60.0 / slope if slope > 0 else 0.0


# --- showing them -------------------------------------------------------------------------------

PLOT_COLOURS = {"loudness": (40, 40, 40), "onset": (200, 120, 0), "beat": (200, 30, 30),
                "bass": (30, 80, 200), "mid": (40, 150, 60), "treble": (150, 60, 180)}
PLOT_ROW = 46  # pixels per feature's lane


def table(features: Features) -> str:
    """The features as text: one line per frame (frame, seconds, then each feature)."""
    lines = ["frame  seconds  " + "  ".join(f"{name:>8}" for name in FEATURES)]
    for t in range(features.frames):
        values = "  ".join(f"{features.values[name][t]:8.3f}" for name in FEATURES)
        lines.append(f"{t:5d}  {t / features.fps:7.3f}  {values}")
    return "\n".join(lines)


def plot(features: Features, width: int = 900) -> bytes:
    """A PNG of the features over the frames, one lane each, the beats marked as red lines."""
    from io import BytesIO

    from PIL import Image, ImageDraw

    left, lanes = 70, len(FEATURES)
    image = Image.new("RGB", (width, PLOT_ROW * lanes + 24), "white")
    draw = ImageDraw.Draw(image)
    span = max(1, features.frames - 1)
    x = left + np.arange(features.frames) * (width - left - 10) / span
    for beat in features.beats:
        bx = left + beat * (width - left - 10) / span
        draw.line([(bx, 0), (bx, PLOT_ROW * lanes)], fill=(255, 200, 200))
    for lane, name in enumerate(FEATURES):
        top, bottom = lane * PLOT_ROW + 4, (lane + 1) * PLOT_ROW - 4
        y = bottom - features.values[name] * (bottom - top)
        draw.line([(left, bottom), (width - 10, bottom)], fill=(220, 220, 220))
        points = list(zip(x.tolist(), y.tolist(), strict=True))
        draw.line(points * (2 if len(points) == 1 else 1), fill=PLOT_COLOURS[name], width=2)
        draw.text((6, top + 12), name, fill=PLOT_COLOURS[name])
    caption = (f"{features.frames} frames at {features.fps:g} fps, {features.seconds:.1f} s, "
               f"{features.tempo:.1f} BPM, {len(features.beats)} beats")
    draw.text((left, PLOT_ROW * lanes + 6), caption, fill=(60, 60, 60))
    buffer = BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


# --- muxing -------------------------------------------------------------------------------------


def mux(video: Path, track: str | Path, start: float, seconds: float, format: str,
        length: float | None = None) -> None:
    """Put `seconds` of the track's sound from `start` into the `format` (mp4 or webm) `video`
    that plays `length` seconds (default: `seconds`; longer where it ping-pongs), replaced
    atomically; silence pads the sound to the video's length. The sound is re-encoded (AAC in
    MP4, Opus in WebM): a cut at any time needs it. Raises `OutputError` (the video is left as it
    was) if ffmpeg fails."""
    codec, bitrate = AUDIO_BITRATE[format]
    video, track = Path(video), Path(track)
    length = seconds if length is None else length
    with images.atomic_output(video, video.suffix) as temp:
        done = _ffmpeg(["-i", str(video), *trim_params(start, start + seconds), "-i", str(track),
                        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", codec,
                        "-b:a", bitrate, "-af", "apad", "-t", f"{length:.6f}", "-y", str(temp)],
                       track)
        if done.returncode != 0:
            raise OutputError(f"cannot put the sound of '{track}' into '{video}' "
                              f"({last_line(done.stderr)}): the video is kept without it")


def _ffmpeg(args: list[str], path: Path) -> subprocess.CompletedProcess:
    return run_ffmpeg(args, lambda: InputError(
        f"audio '{path}': ffmpeg took over {FFMPEG_TIMEOUT_S} s: cut it shorter with start/end"))


