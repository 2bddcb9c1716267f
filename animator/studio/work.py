"""The studio's work, without HTTP: check a config typed in the page, preview its first frame,
run one render at a time (the same resumable frame loop as `animator render`), keep its frames
for the page as they are dreamed, list and download past renders.

Everything lives in one renders folder: a render called NAME is `NAME.yaml` (its config, which
`animator render NAME.yaml --resume` also continues) and `NAME/` (its output and frames folder);
uploaded images go to `inputs/`, named for their content. No path the page sends or a config
names reaches outside that folder (`inside`, over `config.map_files`), the page can load no
plugin (those come from the command line only), and what a GET asks only reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from animator import config as config_module
from animator.config import Config
from animator.media import images
from animator.settings import params
from animator.settings.errors import (
    PLAIN_ADVICE,
    AnimatorError,
    ConfigError,
    InputError,
    Interrupted,
    UserError,
    excerpt,
)
from animator.settings.params import FORMATS

# The library's remedies (errors.PYTHON_ADVICE) in the page's words: its buttons.
STUDIO_ADVICE = {
    "resume_or_force": ": press Resume to continue it, or Start over to replace it",
    "undo_or_force": ": undo the change, or press Start over",
    "force": ": press Start over",
    "resume": ": press Resume to continue",
    "then_resume": ", then press Resume",
    "shorten_or_force": ": set Frames to {frames} and press Resume to make the video of them, or "
                        "change the value and press Start over",
    "assemble": ": every frame is kept; press Resume to make the video from them",
    **PLAIN_ADVICE,
}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
UPLOAD_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
UPLOAD_STEM = 48  # characters of an upload's own name kept before its content's hash
MAX_NAME, MAX_PATH = 255, 1024  # bytes of one name, characters of a path the page may give
PREVIEW_SIDE = 192  # pixels: the preview's longest side, a few seconds of dreaming on a CPU
LIVE_SIDE = 256  # pixels: the longest side of the frames shown while a render runs
LIVE_FRAMES = 240  # the newest frames kept in memory for the page (a few MB)
MODES = {"new": {}, "resume": {"resume": True}, "force": {"force": True}}
# What a render can be downloaded as: each video format an output can have, and its config.
DOWNLOADS = (*FORMATS.values(), "yaml")


class StudioError(UserError):
    """A request the studio refuses; `status` is its HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def inside(root: Path, relative: str, what: str = "path") -> Path:
    """`relative` (a path the page sent, `/`-separated) as a path inside `root`.

    Refused: absolute paths, `..`, hidden names (`.x`, the studio's own), and any symlink on the
    way, so nothing outside the folder can be named however the folder's content changes. The
    refusal is decided from the text alone (and the folder's own links): it is the same whether
    a file outside exists or not. A name the file system cannot hold (too long, a NUL, not
    encodable) is refused before it reaches the disk.
    """
    text = str(relative)
    posix = PurePosixPath(text)
    if not posix.parts or "\\" in text or "\0" in text or posix.is_absolute() or any(
            part in ("..", ".") or part.startswith(".") for part in posix.parts):
        raise StudioError(f"{what} {excerpt(text)} is not inside the renders folder: give a path in it "
                          "such as inputs/photo.jpg", 403)
    try:
        too_long = len(text) > MAX_PATH or any(len(os.fsencode(part)) > MAX_NAME for part in posix.parts)
    except UnicodeError:
        raise StudioError(f"{what} {excerpt(text)} is not a file name this system can hold: "
                          "use plain letters and digits") from None
    if too_long:
        raise StudioError(f"{what} {excerpt(text)} is too long: names have at most {MAX_NAME} bytes "
                          f"and paths {MAX_PATH} characters; shorten it")
    path = root
    for part in posix.parts:
        path = path / part
        try:
            linked = path.is_symlink()
        except OSError as error:
            raise StudioError(f"{what} {excerpt(text)} cannot be looked up ({error.strerror})") from None
        if linked:
            raise StudioError(f"{what} {excerpt(text)} goes through a symbolic link: the studio only "
                              "reads and writes real files inside its renders folder", 403)
    return path


@contextlib.contextmanager
def unforeseen(what: str):
    """An error the project did not foresee, raised while checking, dreaming or assembling the
    page's own config: a 422 with one line (as a render's is its job's message), not a 500."""
    try:
        yield
    except AnimatorError:
        raise
    except Exception as error:
        line = (str(error).splitlines() or [""])[0][:200]
        raise StudioError(f"{what} failed on an internal error ({type(error).__name__}: {line}): "
                          "change the value it is about, or report it", 422) from error


@contextlib.contextmanager
def _regular(path: Path):
    """`path` opened for reading if it is a regular file, else None: not a link, a folder, a pipe
    or a device (opened without waiting, as reading a pipe would wait forever)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except (OSError, ValueError):
        descriptor = None
    if descriptor is None:
        yield None
        return
    with os.fdopen(descriptor, "rb") as stream:
        yield stream if stat.S_ISREG(os.fstat(descriptor).st_mode) else None


def read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of `path` if it is a regular file (`_regular`) of at most `limit` bytes, else None."""
    with _regular(path) as stream:
        try:
            data = stream.read(limit + 1) if stream else None
        except OSError:
            return None
    return data if data is not None and len(data) <= limit else None


@dataclass
class Job:
    """One render: its progress and the frames dreamed so far (small PNGs, by frame index)."""

    name: str
    total: int
    state: str = "starting"  # starting, running, stopping, done, cancelled, failed
    done: int = 0
    started_at: int = 0
    message: str = ""
    notes: list[str] = field(default_factory=list)
    frames: dict[int, bytes] = field(default_factory=dict)
    began: float = field(default_factory=time.monotonic)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def active(self) -> bool:
        """Starting, running or stopping: not yet ended."""
        return self.state in ("starting", "running", "stopping")

    def dreamed(self, made) -> None:
        """A frame was dreamed (`animate.Dreamed`): keep a small PNG of it once its pixels are on
        the host (on the copying thread: the frame loop never waits for the page)."""
        self.state = "stopping" if self.stop.is_set() else "running"
        self.started_at, self.total = made.started_at, made.total
        made.pixels.add_done_callback(lambda pixels: self._keep(made.index, pixels))

    def _keep(self, index: int, pixels) -> None:
        if pixels.exception() is None:
            self.frames[index] = images.preview_png(pixels.result(), LIVE_SIDE)
            self.done = max(self.done, index + 1)
            if len(self.frames) > LIVE_FRAMES:  # older ones are in the frames folder
                self.frames.pop(min(self.frames), None)

    def status(self, since: int = 0) -> dict:
        """What the page shows: state, progress, seconds per frame, ETA, and the new frames."""
        worked = self.done - self.started_at
        rate = (time.monotonic() - self.began) / worked if worked > 0 else None
        return {"name": self.name, "state": self.state, "done": self.done, "total": self.total,
                "started_at": self.started_at, "message": self.message, "notes": self.notes,
                "seconds_per_frame": rate, "eta": rate * (self.total - self.done) if rate else None,
                "frames": sorted(i for i in list(self.frames) if i >= since)}


class Dreamers:
    """The last `Dreamer` built, reused while its arguments (model, weights, layers, objective,
    guide, precision, XLA) stay the same: building one compiles its model, seconds that each
    preview and render would spend again. One entry: other arguments replace it. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: str | None = None
        self._dreamer = None

    def __call__(self, **arguments):
        from animator.engine.dream import Dreamer

        key = json.dumps(arguments, sort_keys=True, default=str)
        with self._lock:
            if key != self._key:
                self._key, self._dreamer = None, None  # the old model goes before the new is built
                self._dreamer, self._key = Dreamer(**arguments), key
            return self._dreamer


class Studio:
    """The renders folder and the one render (or preview) that may run at a time."""

    def __init__(self, root: str | Path,
                 max_pixels: int = params.default("animation", "max_pixels")) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root = self.root.resolve()
        self.max_pixels = max_pixels
        self.busy = threading.Lock()
        self.job: Job | None = None
        self.thread: threading.Thread | None = None
        self.dreamers = Dreamers()

    # --- configs ----------------------------------------------------------------------------

    def check(self, text: str, name: str = "draft", output: dict | None = None) -> Config:
        """The page's YAML as a checked Config whose output is `NAME/NAME.<format>` here.

        Raises ConfigError (each problem with its key path: the same messages as the CLI, plus
        the studio's refusals of plugins and of paths outside the folder) or StudioError.
        """
        if not NAME.fullmatch(name):
            raise StudioError(f"render name {excerpt(name)}: use letters, digits, '-' and '_' (up to 64), "
                              "starting with a letter or digit")
        with unforeseen("checking this config"):
            return self._checked(config_module.parse(text, f"{name}.yaml"), name, output)

    def _checked(self, data: dict, name: str, output: dict | None = None) -> Config:
        """`check` of an already parsed mapping: the one gate every config the studio uses passes."""
        data = dict(data)
        refused = self._refusals(data)
        if refused:
            raise ConfigError(f"config '{name}.yaml': " + "; ".join(line for _, line in refused),
                              problems=refused)
        if isinstance(data.get("output") or {}, dict):  # else the config check reports its type
            data["output"] = {**(data.get("output") or {}), **(output or {"path": self._output(name, data)})}
        return config_module.from_mapping(data, self.root, source=str(self.root / f"{name}.yaml"))

    def soundtrack(self, text: str, name: str = "draft") -> tuple[bytes, dict] | None:
        """The page's config's soundtrack: a PNG plot of its features (`animator audio --plot`)
        and where the page plays it from (`url` of the file in this folder, `start` in seconds,
        `fps`); None without `audio:`. Raises as `check` does."""
        from animator.media import audio

        config = self.check(text, name)
        if config.soundtrack is None:
            return None
        relative = config.audio_path.resolve().relative_to(self.root)
        return audio.plot(config.soundtrack), {"url": f"/files/{relative.as_posix()}",
                                               "start": config.animation.audio.start,
                                               "fps": config.animation.fps}

    def _output(self, name: str, data: dict) -> str:
        fmt = (data.get("output") or {}).get("format") or "gif"
        return f"{name}/{name}{config_module.format_suffix(fmt)}"

    def _refusals(self, data: dict) -> list[tuple[str, str]]:
        """(key path, line) for what the page may not ask: plugins, files outside the folder."""
        refused = []
        if data.get("plugins"):
            refused.append(("plugins", "plugins: the studio loads plugins from its command line "
                            "only (animator studio --plugin FILE): remove plugins from the config"))
        output = data.get("output")
        if isinstance(output, dict) and output.get("path") is not None:
            refused.append(("output.path", "output.path: the studio writes each render to "
                            "NAME/ in its folder: remove output.path and name the render instead"))
        refused += self._plugin_transforms(data.get("transforms"))
        for key, value in config_module.files_named(data).items():
            if any(key == done for done, _ in refused):  # output.path: refused already
                continue
            try:
                inside(self.root, str(value), "file")
            except StudioError as error:
                refused.append((key, f"{key}: {error}"))
        return refused

    def _plugin_transforms(self, spec) -> list[tuple[str, str]]:
        """Transforms the page names that would load a plugin (a file, an installed entry point)."""
        import transforms

        registry, refused = transforms.active(), []
        for index, item in enumerate(spec if isinstance(spec, list) else []):
            try:
                step = transforms.read_step(item)
            except ConfigError:  # not a step: the config's check says so
                continue
            name = step.written
            if step.plugin is not None or (name not in registry and name in registry.available()):
                refused.append((f"transforms[{index}]", f"transforms[{index}]: '{name}' is a plugin: "
                                "the studio loads plugins from its command line only "
                                "(animator studio --plugin ...)"))
        return refused

    def dump(self, data: dict) -> str:
        """A config mapping (the form's) as YAML, keys in the order given."""
        try:
            return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        except RecursionError:
            raise StudioError(f"config: values nested over {config_module.MAX_CONFIG_DEPTH} levels "
                              "deep") from None

    # --- preview and render -----------------------------------------------------------------

    def preview(self, text: str) -> bytes:
        """The first frame of the page's config at a reduced size, as PNG bytes."""
        config = self.check(text, "preview", output={"path": ".studio/preview", "format": "frames"})
        with unforeseen("the preview"):
            return self._preview(config)

    def _preview(self, config: Config) -> bytes:
        from animator import api

        width, height = self._planned_size(config)
        scale = min(1.0, PREVIEW_SIDE / max(width, height))
        small = [max(8, round(width * scale)), max(8, round(height * scale))]
        config = api.load_config(config, size=small, frames=1)
        with self._only_one("a preview"):
            (pixels,) = api.frames(config, force=True, note=lambda text: None, dreamer=self.dreamers)
        return images.preview_png(pixels, PREVIEW_SIDE)

    def _planned_size(self, config: Config) -> tuple[int, int]:
        animation = config.animation
        if animation.size is not None:
            return tuple(animation.size)
        if config.input_path is None:
            return tuple(animation.input.noise.size)
        return images.image_size(config.input_path, min(animation.max_pixels, self.max_pixels))

    @contextlib.contextmanager
    def _only_one(self, what: str):
        if not self.busy.acquire(blocking=False):
            running = self.job.name if self.job and self.job.active else "a preview"
            raise StudioError(f"cannot start {what}: {running} is running; wait for it or cancel it",
                              409)
        try:
            yield
        finally:
            self.busy.release()

    def start(self, text: str, name: str, mode: str = "new") -> Job:
        """Start rendering the page's config as NAME on a background thread; one at a time."""
        if mode not in MODES:
            raise StudioError(f"mode '{mode}': expected one of {list(MODES)}")
        config = self.check(text, name)
        if not self.busy.acquire(blocking=False):
            raise StudioError(f"cannot start '{name}': another render or a preview is running; "
                              "wait for it or cancel it", 409)
        self.job = Job(name, config.frames)
        self.thread = threading.Thread(target=self._render, args=(self.job, config, mode),
                                       name=f"studio-{name}", daemon=True)
        self.thread.start()
        return self.job

    def _render(self, job: Job, config: Config, mode: str) -> None:
        from animator.renderer import loop as animate

        try:
            steps = animate.run(config, stop=job.stop, note=job.notes.append, dreamer=self.dreamers,
                                **MODES[mode])
            with contextlib.closing(steps):
                for made in steps:
                    if made.index == made.started_at:  # the checks passed: keep the config beside
                        self._save_config(config, job.name)
                    job.dreamed(made)
            job.state = "done"
        except Interrupted as error:
            job.state, job.message = "cancelled", error.worded(STUDIO_ADVICE)
        except AnimatorError as error:
            job.state, job.message = "failed", error.worded(STUDIO_ADVICE)
        except Exception as error:  # an internal error: the page says so, the studio goes on
            job.state, job.message = "failed", f"internal error: {type(error).__name__}: {error}"
        finally:
            self.busy.release()

    def _save_config(self, config: Config, name: str) -> None:
        data = config.animation.model_dump(mode="json", exclude_unset=True)
        text = self.dump(data)
        images.write_atomic(self.root / f"{name}.yaml", lambda stream: stream.write(text.encode()),
                            "run again")

    def cancel(self) -> Job | None:
        """Ask the running render to stop after its current frame (what is done is kept)."""
        job = self.job
        if job is not None and job.state in ("starting", "running"):
            job.stop.set()
            job.state = "stopping"
        return job

    def close(self, timeout: float = 600) -> None:
        """Stop a running render after its current frame and wait for it (the server is
        stopping): every frame dreamed is on disk, and Resume continues it later."""
        self.cancel()
        if self.thread is not None:
            self.thread.join(timeout)

    # --- files ------------------------------------------------------------------------------

    def upload(self, filename: str, stream, max_pixels: int) -> str:
        """Save an uploaded image to inputs/ (refused from its header if over `max_pixels`);
        returns its path in the folder, for the config's `input:`.

        The name ends with a hash of the content, so an upload never replaces an earlier one (a
        render made from that one still resumes): the same image again gets the same name."""
        name = UPLOAD_NAME.sub("_", Path(filename or "").name).lstrip("._")
        suffix = Path(name).suffix.lower()
        if not name or suffix not in images.FRAME_SUFFIXES:
            raise StudioError(f"upload {excerpt(filename)}: expected an image file "
                              f"({', '.join(images.FRAME_SUFFIXES)})")
        images.image_size(stream, min(max_pixels, self.max_pixels), name)
        digest = _stream_digest(stream)
        relative = f"inputs/{Path(name).stem[:UPLOAD_STEM]}-{digest}{suffix}"
        target = inside(self.root, relative, "upload")
        if not target.parent.is_dir():
            try:
                target.parent.mkdir()
            except OSError as error:
                raise StudioError(f"cannot make the folder inputs/ ({error.strerror}): move away "
                                  "what is there by that name", 409) from None
        if target.exists() or target.is_symlink():
            if read_digest(target) == digest:
                return relative  # this very image, uploaded before
            raise StudioError(f"'{relative}' exists with other content: move it away, then upload "
                              "again", 409)
        stream.seek(0)
        images.write_atomic(target, lambda out: shutil.copyfileobj(stream, out), "upload it again")
        return relative

    def inputs(self) -> list[str]:
        """The images uploaded to inputs/ (or copied there), as paths for `input:`."""
        folder = self.root / "inputs"
        if folder.is_symlink():
            return []
        return [f"inputs/{path.name}" for path in _images(folder) if not path.is_symlink()]

    def gallery(self) -> list[dict]:
        """Past renders, newest first: name, config text, frames, which files exist, and the one
        the page shows (`shown`: a video the render made, else a GIF made from its frames).
        What cannot be read as a render (a link, a folder or a pipe named x.yaml, a file that
        vanished) is skipped: the listing never waits on a pipe."""
        renders = []
        for modified, path in self._configs():
            name, text = path.stem, read_regular(path, config_module.MAX_CONFIG_BYTES)
            if text is None:
                continue
            frames_dir = self._frames_dir(name)
            frames = _images(frames_dir) if frames_dir else []
            files = {kind: (self.root / name / f"{name}.{kind}").is_file() for kind in FORMATS.values()}
            shown = next((kind for kind, made in files.items() if made), "gif")  # none: made on demand
            renders.append({"name": name, "yaml": self._page_yaml(text.decode("utf-8", "replace"), path.name),
                            "frames": len(frames),
                            "thumb": frames[0].relative_to(self.root).as_posix() if frames else None,
                            "files": files, "shown": shown, "modified": modified,
                            "running": bool(self.job and self.job.name == name and self.job.active)})
        return renders

    def _configs(self) -> list[tuple[float, Path]]:
        """(modified time, path) of each NAME.yaml that is a regular file, newest first."""
        found = []
        for path in self.root.glob("*.yaml"):
            try:
                info = path.lstat()
            except OSError:
                continue
            if NAME.fullmatch(path.stem) and stat.S_ISREG(info.st_mode):
                found.append((info.st_mtime, path))
        return sorted(found, key=lambda item: item[0], reverse=True)

    def _page_yaml(self, text: str, source: str) -> str:
        """A render's config as the page edits it: without the output path the studio sets."""
        try:
            data = _without_output_path(config_module.parse(text, source))
        except ConfigError:
            return text
        return self.dump({key: value for key, value in data.items() if value is not None})

    def _frames_dir(self, name: str) -> Path | None:
        folder = self.root / name
        if folder.is_symlink() or not folder.is_dir():
            return None
        found = sorted(folder.glob(f"{name}*.frames"))
        return found[0] if found and not found[0].is_symlink() else None

    def download(self, name: str, kind: str) -> Path:
        """NAME's video in one of `DOWNLOADS` (GIF, WebP, MP4, WebM) or its YAML, as it is on disk: a
        download only reads (`make` assembles a video the render did not make)."""
        path = self._download_path(name, kind)
        if not path.is_file():
            made = "does not exist" if kind == "yaml" else "has not been made: press its link on the page"
            raise StudioError(f"'{name}.{kind}' {made}", 404)
        return path

    def _download_path(self, name: str, kind: str) -> Path:
        if not NAME.fullmatch(name) or kind not in DOWNLOADS:
            raise StudioError(f"no such download: {excerpt(f'{name}.{kind}')}", 404)
        return inside(self.root, f"{name}.yaml" if kind == "yaml" else f"{name}/{name}.{kind}")

    def make(self, name: str, kind: str) -> Path:
        """Assemble NAME's video in `kind` (GIF, WebP, MP4, WebM) from its frames with its config's
        output options and, in MP4 and WebM, its soundtrack's sound, unless it exists. The config
        passes the page's own check (`check`): no plugin is loaded, no file outside the folder is
        read."""
        path = self._download_path(name, kind)
        if kind == "yaml" or path.is_file():
            return self.download(name, kind)
        text = read_regular(self._download_path(name, "yaml"), config_module.MAX_CONFIG_BYTES)
        if text is None:
            raise StudioError(f"'{name}.yaml' does not exist (or is not a readable file)", 404)
        with unforeseen(f"making {name}.{kind}"):
            return self._make(name, kind, path, text.decode("utf-8", "replace"))

    def _make(self, name: str, kind: str, path: Path, text: str) -> Path:
        data = _without_output_path(config_module.parse(text, f"{name}.yaml"))
        config = self._checked(data, name)
        frames_dir = self._frames_dir(name)
        frames = len(_images(frames_dir)) if frames_dir is not None else 0
        if not frames:
            raise StudioError(f"'{name}' has no frames to make a {kind.upper()} of", 404)
        with self._only_one(f"making {name}.{kind}"):
            from animator.media import video
            from animator.renderer import output

            # the render's own assembly (palette, dither, preset, ...), into the kind asked for,
            # with its soundtrack where the kind carries sound (the page has shown the rest)
            video.assemble(**{**output.assemble_arguments(config), "frames": str(frames_dir),
                              "out": str(path), "format": kind})
            output.add_soundtrack(config, path, frames, note=lambda line: None, format=kind)
        return path


def _without_output_path(data: dict) -> dict:
    """A render's saved config without the output path the studio set (it names NAME/ itself)."""
    if isinstance(data.get("output"), dict):
        data["output"].pop("path", None)
        data["output"] = data["output"] or None
    return data


def _stream_digest(stream) -> str:
    """16 hex digits of a hash of a binary stream's content, read from its start."""
    stream.seek(0)
    digest = hashlib.sha256()
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()[:16]


def read_digest(path: Path) -> str | None:
    """`_stream_digest` of a regular file (`_regular`), or None."""
    with _regular(path) as stream:
        try:
            return _stream_digest(stream) if stream else None
        except OSError:
            return None


def _images(folder: Path) -> list[Path]:
    """The image files in `folder` in natural order; none if it is missing or empty."""
    try:
        return images.list_frames(folder)
    except InputError:
        return []
