"""The studio's work, without HTTP: check a config typed in the page, preview its first frame,
run one render at a time (the same resumable frame loop as `animator render`), keep its frames
for the page as they are dreamed, list and download past renders.

Everything lives in one renders folder: a render called NAME is `NAME.yaml` (its config, which
`animator render NAME.yaml --resume` also continues) and `NAME/` (its output and frames folder);
uploaded images go to `inputs/`. No path the page sends reaches outside that folder (`inside`),
and the page can load no plugin: those come from the command line only.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from animator import config as config_module
from animator import io, params
from animator.config import Config
from animator.errors import PLAIN_ADVICE, AnimatorError, ConfigError, InputError, Interrupted, UserError
from animator.video import FORMATS

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
    way, so nothing outside the folder can be named however the folder's content changes.
    """
    parts = PurePosixPath(str(relative)).parts
    if not parts or "\\" in str(relative) or PurePosixPath(str(relative)).is_absolute() or any(
            part in ("..", ".") or part.startswith(".") for part in parts):
        raise StudioError(f"{what} '{relative}' is not inside the renders folder: give a path in it "
                          "such as inputs/photo.jpg", 403)
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise StudioError(f"{what} '{relative}' goes through a symbolic link: the studio only "
                              "reads and writes real files inside its renders folder", 403)
    return path


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
            self.frames[index] = io.preview_png(pixels.result(), LIVE_SIDE)
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
        from animator.dream import Dreamer

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
            raise StudioError(f"render name '{name}': use letters, digits, '-' and '_' (up to 64), "
                              "starting with a letter or digit")
        data = config_module.parse(text, f"{name}.yaml")
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
        from animator import audio

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
            name = str(item if not isinstance(item, dict) else next(iter(item), ""))
            if ":" in name or (name not in registry and name in registry.available()):
                refused.append((f"transforms[{index}]", f"transforms[{index}]: '{name}' is a plugin: "
                                "the studio loads plugins from its command line only "
                                "(animator studio --plugin ...)"))
        return refused

    def dump(self, data: dict) -> str:
        """A config mapping (the form's) as YAML, keys in the order given."""
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    # --- preview and render -----------------------------------------------------------------

    def preview(self, text: str) -> bytes:
        """The first frame of the page's config at a reduced size, as PNG bytes."""
        from animator import api

        config = self.check(text, "preview", output={"path": ".studio/preview", "format": "frames"})
        width, height = self._planned_size(config)
        scale = min(1.0, PREVIEW_SIDE / max(width, height))
        small = [max(8, round(width * scale)), max(8, round(height * scale))]
        config = api.load_config(config, size=small, frames=1)
        with self._only_one("a preview"):
            (pixels,) = api.frames(config, force=True, note=lambda text: None, dreamer=self.dreamers)
        return io.preview_png(pixels, PREVIEW_SIDE)

    def _planned_size(self, config: Config) -> tuple[int, int]:
        animation = config.animation
        if animation.size is not None:
            return tuple(animation.size)
        if config.input_path is None:
            return tuple(animation.input.noise.size)
        return io.image_size(config.input_path, min(animation.max_pixels, self.max_pixels))

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
        from animator import animate

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
        io.write_atomic(self.root / f"{name}.yaml", lambda stream: stream.write(text.encode()), "run again")

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
        returns its path in the folder, for the config's `input:`."""
        name = UPLOAD_NAME.sub("_", Path(filename or "").name).lstrip("._")
        if not name or Path(name).suffix.lower() not in io.FRAME_SUFFIXES:
            raise StudioError(f"upload '{filename}': expected an image file "
                              f"({', '.join(io.FRAME_SUFFIXES)})")
        io.image_size(stream, min(max_pixels, self.max_pixels), name)
        stream.seek(0)
        target = inside(self.root, f"inputs/{name}", "upload")
        target.parent.mkdir(exist_ok=True)
        io.write_atomic(target, lambda out: shutil.copyfileobj(stream, out), "upload it again")
        return f"inputs/{name}"

    def inputs(self) -> list[str]:
        """The images uploaded to inputs/ (or copied there), as paths for `input:`."""
        folder = self.root / "inputs"
        if folder.is_symlink():
            return []
        return [f"inputs/{path.name}" for path in _images(folder) if not path.is_symlink()]

    def gallery(self) -> list[dict]:
        """Past renders, newest first: name, config text, frames, which files exist, and the one
        the page shows (`shown`: a video the render made, else a GIF made from its frames)."""
        renders = []
        for path in sorted(self.root.glob("*.yaml"), key=lambda p: p.stat().st_mtime, reverse=True):
            name = path.stem
            if not NAME.fullmatch(name) or path.is_symlink():
                continue
            frames_dir = self._frames_dir(name)
            frames = _images(frames_dir) if frames_dir else []
            files = {kind: (self.root / name / f"{name}.{kind}").is_file() for kind in FORMATS.values()}
            shown = next((kind for kind, made in files.items() if made), "gif")  # none: made on demand
            renders.append({"name": name, "yaml": self._page_yaml(path), "frames": len(frames),
                            "thumb": frames[0].relative_to(self.root).as_posix() if frames else None,
                            "files": files, "shown": shown, "modified": path.stat().st_mtime,
                            "running": bool(self.job and self.job.name == name and self.job.active)})
        return renders

    def _page_yaml(self, path: Path) -> str:
        """A render's config as the page edits it: without the output path the studio sets."""
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            data = config_module.parse(text, path.name)
        except ConfigError:
            return text
        if isinstance(data.get("output"), dict):
            data["output"].pop("path", None)
            data["output"] = data["output"] or None
        return self.dump({key: value for key, value in data.items() if value is not None})

    def _frames_dir(self, name: str) -> Path | None:
        folder = self.root / name
        found = sorted(folder.glob(f"{name}*.frames")) if folder.is_dir() else []
        return found[0] if found and not found[0].is_symlink() else None

    def download(self, name: str, kind: str) -> Path:
        """NAME's video in one of `DOWNLOADS` (GIF, WebP, MP4) or its YAML; a video not made by the
        render is assembled from its frames with the config's output options."""
        if not NAME.fullmatch(name) or kind not in DOWNLOADS:
            raise StudioError(f"no such download: '{name}.{kind}'", 404)
        if kind == "yaml":
            return self._existing(inside(self.root, f"{name}.yaml"))
        path = inside(self.root, f"{name}/{name}.{kind}")
        if path.is_file():
            return path
        config = config_module.load(self._existing(inside(self.root, f"{name}.yaml")))
        frames_dir = self._frames_dir(name)
        if frames_dir is None or not _images(frames_dir):
            raise StudioError(f"'{name}' has no frames to make a {kind.upper()} of", 404)
        with self._only_one(f"making {name}.{kind}"):
            from animator import animate, video

            # the render's own assembly (palette, dither, preset, ...), into the kind asked for
            video.assemble(**{**animate.assemble_arguments(config), "frames": str(frames_dir),
                              "out": str(path), "format": kind})
        return path

    def _existing(self, path: Path) -> Path:
        if not path.is_file():
            raise StudioError(f"'{path.relative_to(self.root)}' does not exist", 404)
        return path


def _images(folder: Path) -> list[Path]:
    """The image files in `folder` in natural order; none if it is missing or empty."""
    try:
        return io.list_frames(folder)
    except InputError:
        return []
