"""The frames folder of a render: one PNG per frame and the state needed to resume.

`<output>.frames/` holds `00000.png`, `00001.png`, …; `state-0.npz` and `state-1.npz` (the two
most recent resume points, alternating, so a torn last write still leaves the one before);
`first.npz` (the first dreamed frame, for colour coherence, checksummed like the states);
`render.json` (the settings that decide the pixels, to say what changed when a resume is refused);
`render.lock` (held while a render writes here, so two renders of one output never interleave).
Every file is written to a temporary name and renamed, so each is either complete or absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from PIL import Image

from animator.media import images
from animator.settings.errors import OutputError

FRAME_NAME = re.compile(r"^(\d{5,})\.png$")
TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")  # images.temp_beside's names: `.00003.png.1a2b3c4d.tmp`
STATE_FILES = ("state-0.npz", "state-1.npz")
FIRST_FILE, RECORD_FILE, LOCK_FILE = "first.npz", "render.json", "render.lock"
PLUGIN_FAILED_FILE = "plugin-failed"  # a plugin's failure stopped the render: its code may change
OLD_FILES = ("first.npy",)  # written by earlier versions (no checksum): removed, never trusted


@dataclass(frozen=True)
class SavedState:
    """A resume point: dream frame `index` next, from `frame`, with the generator in `rng_state`."""

    index: int
    frame: np.ndarray
    rng_state: dict
    fingerprint: str


class FrameStore:
    """Reads and writes one render's frames folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.fingerprint = ""
        self._saved = dict.fromkeys(STATE_FILES, -1)  # the index each state file holds

    def frame_path(self, index: int) -> Path:
        return self.folder / f"{index:05d}.png"

    def create(self) -> None:
        """Make the folder (and its parents); an unwritable place is an OutputError."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise images.output_error(error, self.folder) from error
        if not os.access(self.folder, os.W_OK):
            raise images.output_error(PermissionError(13, "Permission denied"), self.folder)

    @contextlib.contextmanager
    def lock(self, output: Path):
        """Hold this folder's render lock (created with the folder if missing) while writing.

        A second render of the same `output` is refused with an OutputError while one runs; the
        operating system releases the lock of a process that dies, so a killed render never
        blocks the next. A folder this call created and left with no frames is removed.
        """
        created = not self.folder.exists()
        self.create()
        lock = FileLock(self.folder / LOCK_FILE, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            if created:
                self._remove_if_unused()
            raise OutputError(f"another render of '{output}' is running (it holds "
                              f"'{self.folder / LOCK_FILE}'): wait for it to end, or choose another "
                              "output path") from None
        try:
            yield
        finally:
            if created and self._only_lock_left():
                # unlinked while held: a render starting now creates a new lock file of its own
                (self.folder / LOCK_FILE).unlink(missing_ok=True)
            lock.release()
            if created:
                self._remove_if_unused()

    def _only_lock_left(self) -> bool:
        return self.folder.is_dir() and {p.name for p in self.folder.iterdir()} <= {LOCK_FILE}

    def _remove_if_unused(self) -> None:
        with contextlib.suppress(OSError):  # not empty: another render's lock, or the user's files
            self.folder.rmdir()

    def has_frames(self) -> bool:
        """Whether any frame file is in the folder (with or without gaps)."""
        return self.folder.is_dir() and any(FRAME_NAME.match(p.name) for p in self.folder.iterdir())

    def frame_count(self) -> int:
        """How many frames from 00000 on exist without a gap."""
        if not self.folder.is_dir():
            return 0
        present = {int(m.group(1)) for p in self.folder.iterdir() if (m := FRAME_NAME.match(p.name))}
        count = 0
        while count in present:
            count += 1
        return count

    def clear(self) -> None:
        """Remove this project's files from the folder (frames, states, temporaries); keep others."""
        self._saved = dict.fromkeys(STATE_FILES, -1)
        if not self.folder.is_dir():
            return
        ours = set(STATE_FILES) | {FIRST_FILE, RECORD_FILE, PLUGIN_FAILED_FILE, *OLD_FILES}
        for path in self.folder.iterdir():
            if path.is_file() and (FRAME_NAME.match(path.name) or path.name in ours
                                   or path.name.startswith(".")):
                path.unlink()

    def remove_temporaries(self) -> None:
        """Remove the temporaries a killed render left in the folder (`images.temp_beside`'s hidden
        files); call it only while holding the lock."""
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if TEMPORARY.match(path.name):
                with contextlib.suppress(OSError):
                    path.unlink()

    # Text written into every frame PNG (the effective config: how the frame was made).
    frame_text: dict[str, str] | None = None

    def write_frame(self, index: int, pixels) -> None:
        """Write frame `index` as PNG, atomically, with `frame_text` in its text chunks. Its
        name is made durable with the next resume point (`save_state`): a frame after the last
        one is dreamed again on resume anyway. A folder removed meanwhile is not made again."""
        self._guarded(lambda: images.write_png_atomic(self.frame_path(index), pixels, fast=True,
                                                  text=self.frame_text, durable=False,
                                                  create_folder=False))

    def _guarded(self, write) -> None:
        """Run `write`; its failure, where the folder itself is gone, says so."""
        try:
            write()
        except OutputError as error:
            # a file created in the folder is not found only where the folder is (being) removed
            if isinstance(error.__cause__, FileNotFoundError) or not self.folder.is_dir():
                raise self.removed() from None
            raise

    def removed(self) -> OutputError:
        """The error for a folder (or its frames) removed while a render writes it."""
        return OutputError(f"the frames folder '{self.folder}' was removed, or frames in it, while "
                           "the render wrote it: its frames are lost; render it again")

    def save_start(self) -> None:
        """Save the resume point before frame 0 (a new render's, before any frame is written), so
        that a folder with frames always holds one: resuming from it dreams from the input."""
        self.save_state(0, np.zeros((0, 0, 3), np.float32), {})

    def save_state(self, index: int, frame, rng_state: dict) -> None:
        """Save the resume point before frame `index`, in the older of the two state files
        (by the index's parity while points are saved at every frame)."""
        frame = np.ascontiguousarray(frame, np.float32)
        payload = {
            "index": np.int64(index),
            "frame": frame,
            "rng": np.frombuffer(json.dumps(rng_state).encode(), np.uint8),
            "fingerprint": np.frombuffer(self.fingerprint.encode(), np.uint8),
            "checksum": np.frombuffer(_digest(frame, index).encode(), np.uint8),
        }
        images.sync_folder(self.folder)  # the frames' names before the point that counts them
        name = STATE_FILES[index % 2]
        if self._saved[name] == max(self._saved.values()) >= 0:  # it holds the newest: keep it
            name = STATE_FILES[1 - index % 2]
        self._write(name, lambda stream: np.savez(stream, **payload))
        self._saved[name] = index

    def latest_state(self) -> SavedState | None:
        """The newest intact resume point whose frames are all on disk and intact, or None.

        A frame missing or damaged (torn, truncated) before every kept point leaves the start:
        index 0, with the newest point's fingerprint (the render it belongs to), so that a resume
        dreams again from the input rather than refuse; with no intact point at all, None.
        """
        frames = self._intact_count()
        found = {name: self._read_state(name) for name in STATE_FILES}
        self._saved = {name: state.index if state else -1 for name, state in found.items()}
        states = sorted(filter(None, found.values()), key=lambda s: s.index, reverse=True)
        for state in states:
            if state.index <= frames and self._frame_readable(state.index - 1):
                return state
        return SavedState(0, np.zeros((0, 0, 3), np.float32), {}, states[0].fingerprint) if states else None

    def _intact_count(self) -> int:
        """How many frames from 00000 on are there and look whole (`_looks_whole`), without a gap."""
        count = self.frame_count()
        return next((index for index in range(count) if not _looks_whole(self.frame_path(index))), count)

    def save_first(self, frame) -> None:
        """Keep the first dreamed frame's float pixels, with their checksum."""
        frame = np.ascontiguousarray(frame, np.float32)
        checksum = np.frombuffer(_digest(frame, 0).encode(), np.uint8)
        self._write(FIRST_FILE, lambda stream: np.savez(stream, frame=frame, checksum=checksum))

    def load_first(self) -> np.ndarray | None:
        """The first dreamed frame, or None if it is missing, torn or altered."""
        try:
            with np.load(self.folder / FIRST_FILE) as data:
                frame, checksum = data["frame"], data["checksum"].tobytes().decode()
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        return frame if checksum == _digest(frame, 0) else None

    def first_frame_pixels(self) -> np.ndarray | None:
        """Frame 00000's uint8 pixels as written, or None if it cannot be read."""
        try:
            with Image.open(self.frame_path(0)) as image:
                return np.asarray(image.convert("RGB"))
        except Exception as error:  # any damage Pillow meets, a decompression bomb too
            if not images.decode_failure(error):
                raise
            return None

    def mark_plugin_failed(self) -> None:
        """Remember that a plugin's failure stopped the render: its fixed code may resume it."""
        if self.folder.is_dir():
            with contextlib.suppress(OutputError):  # the failure itself is what is reported
                self._write(PLUGIN_FAILED_FILE, lambda stream: None)

    def plugin_failed(self) -> bool:
        """Whether a plugin's failure stopped the render last (`mark_plugin_failed`)."""
        return (self.folder / PLUGIN_FAILED_FILE).is_file()

    def save_record(self, record: dict, fingerprint: str) -> None:
        """Remember the pixel-deciding settings, and the fingerprint that states will carry;
        a plugin's failure is then forgotten (its new code is recorded)."""
        self.fingerprint = fingerprint
        text = json.dumps({"fingerprint": fingerprint, "settings": record}, indent=1, sort_keys=True)
        self._write(RECORD_FILE, lambda stream: stream.write(text.encode()))
        (self.folder / PLUGIN_FAILED_FILE).unlink(missing_ok=True)

    def changed_keys(self, record: dict) -> list[str]:
        """The key paths whose values differ from the recorded settings."""
        saved = self._record().get("settings")
        return [] if saved is None else _diff(saved, record)

    def recorded_fingerprint(self) -> str | None:
        """The fingerprint of the render this folder holds, or None if it has no readable record."""
        fingerprint = self._record().get("fingerprint")
        return fingerprint if isinstance(fingerprint, str) else None

    def _record(self) -> dict:
        try:
            record = json.loads((self.folder / RECORD_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def _write(self, name: str, write) -> None:
        self._guarded(lambda: images.write_atomic(self.folder / name, write))

    def _read_state(self, name: str) -> SavedState | None:
        try:
            with np.load(self.folder / name) as data:
                index, frame = int(data["index"]), data["frame"]
                state = SavedState(index, frame, json.loads(data["rng"].tobytes()),
                                   data["fingerprint"].tobytes().decode())
                intact = data["checksum"].tobytes().decode() == _digest(frame, index)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # a torn write
            return None
        return state if intact else None

    def _frame_readable(self, index: int) -> bool:
        if index < 0:
            return True
        try:
            with Image.open(self.frame_path(index)) as image:
                image.load()
            return True
        except Exception as error:
            if not images.decode_failure(error):
                raise
            return False


PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _looks_whole(path: Path) -> bool:
    """Whether a frame PNG begins with the signature and ends with the IEND chunk: a truncated
    or overwritten file does not. Two small reads, not a decode: every frame is checked."""
    try:
        with open(path, "rb") as stream:
            start = stream.read(len(PNG_START))
            stream.seek(max(0, os.fstat(stream.fileno()).st_size - len(PNG_END)))
            return start == PNG_START and stream.read() == PNG_END
    except OSError:
        return False


def _digest(frame: np.ndarray, index: int) -> str:
    """sha256 of the frame's bytes then the index's digits (hashed in place: no 25 MB copies)."""
    frame = np.ascontiguousarray(frame)
    digest = hashlib.sha256(memoryview(frame).cast("B") if frame.size else b"")  # the start: empty
    digest.update(str(index).encode())
    return digest.hexdigest()[:32]


def _diff(old, new, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*old, *new]))
        return [d for k in keys for d in _diff(old.get(k), new.get(k), f"{path}{k}.")]
    return [path.rstrip(".")] if old != new else []
