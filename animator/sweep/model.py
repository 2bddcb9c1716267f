"""Sweeps: many variants of one animation, each a full config with a stable id and its own folder.

A sweep file names a `base:` config (a path relative to the sweep file, or an inline mapping) and
what to vary: `grid:` (every combination of the listed values; keys written as `--set` writes
them, `transforms.0.zoom.factor`) and/or `random:` (`n` seeded draws from `ranges`). Variant `id`
is a hash of its resolved settings; it renders into `<folder>/<id>/` (its `variant.yaml`, its output
and frames folder), so running the sweep again skips finished variants and resumes the others.
`animator.sweep.plan.run` renders them with an executor (`animator.sweep.executors`: here, or Ray
tasks), then writes the contact sheet and `index.html` (`animator.sweep.results`).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from pydantic import Field, ValidationError

from animator import config as config_module
from animator.config import Config, Strict
from animator.settings.errors import PYTHON_ADVICE, ConfigError, word

MAX_VARIANTS = 1000
Number = int | float


class Choices(Strict):
    """A random setting drawn from a list of values."""

    choices: Annotated[list[Any], Field(min_length=1)]


class RandomDraws(Strict):
    """`random:`: `n` variants, each setting drawn from its range (`[low, high]`: integers when both
    are integers, else uniform floats; or `{choices: [...]}`), from the generator seeded `seed`."""

    n: Annotated[int, Field(gt=0, le=MAX_VARIANTS)]
    seed: int = 0
    ranges: Annotated[dict[str, tuple[Number, Number] | Choices], Field(min_length=1)]


class ContactSheet(Strict):
    """`contact_sheet:`: every variant side by side in one GIF or MP4 (path relative to the
    sweep's folder), each frame fitted into a `tile`×`tile` pixel cell above its label."""

    path: str = "contact_sheet.gif"
    tile: Annotated[int, Field(ge=16, le=2048)] = 256
    fps: Annotated[float, Field(gt=0, le=240)] | None = None  # default: the base config's


class SweepFile(Strict):
    """The whole sweep file."""

    base: str | dict[str, Any]
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    random: RandomDraws | None = None
    output: str | None = None  # the sweep's folder, relative to the sweep file: out/<name>/
    contact_sheet: ContactSheet = ContactSheet()


@dataclass(frozen=True)
class Variant:
    """One animation of the sweep: the settings it varies, its full mapping (`variant.yaml`) and
    its validated config, whose output lies in its own folder."""

    id: str
    settings: dict[str, Any]
    data: dict[str, Any]
    config: Config

    @property
    def folder(self) -> Path:
        return self.config.output_path.parent

    @property
    def yaml_path(self) -> Path:
        return self.folder / "variant.yaml"

    def label(self) -> list[str]:
        """`key=value` per varied setting, keys shortened to their last part when unambiguous."""
        last = [key.rsplit(".", 1)[-1] for key in self.settings]
        names = last if len(set(last)) == len(last) else list(self.settings)
        return [f"{name}={_short(value)}" for name, value in zip(names, self.settings.values())]

    def frames_done(self) -> int:
        from animator.renderer.state import FrameStore

        return FrameStore(self.config.frames_dir).frame_count()

    def finished(self) -> bool:
        """Every frame is rendered and the output (if any) written."""
        config = self.config
        has_output = config.output_format == "frames" or config.output_path.is_file()
        return has_output and self.frames_done() >= config.frames


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep: its variants, the folder they render into, the contact sheet's options."""

    source: Path
    folder: Path
    variants: list[Variant]
    sheet: ContactSheet
    fps: float

    @property
    def sheet_path(self) -> Path:
        return self.folder / self.sheet.path

    @property
    def index_path(self) -> Path:
        return self.folder / "index.html"


@dataclass(frozen=True)
class Outcome:
    """What became of one variant in a run: finished, skipped (finished before), failed (with the
    error's message, its remedy as `errors.AnimatorError` has it, and its exit status) or stopped
    (by a stop request, its frames kept)."""

    id: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    message: str = ""
    remedy: str | None = None
    exit_code: int = 0
    facts: Mapping[str, object] = field(default_factory=dict)

    def worded(self, advice: Mapping[str, str] = PYTHON_ADVICE) -> str:
        """The failure's message with its remedy in a front end's words."""
        return word(self.message, self.remedy, advice, self.facts)


@dataclass(frozen=True)
class SweepReport:
    """A run of a sweep: each variant's outcome (in sweep order), the results written."""

    outcomes: list[Outcome]
    sheet: Path | None
    index: Path

    def with_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]


# --- loading --------------------------------------------------------------------------------


def load(path: str | Path, overrides: list[str] = (), folder: str | Path | None = None) -> Sweep:
    """Read and check a sweep file and resolve its variants.

    `overrides` (`key.path=value`) apply to the base config; `folder` replaces the file's
    `output:`. Raises ConfigError naming each bad key path (of the sweep file, or of a variant).
    """
    path = Path(path)
    data = config_module.read(path)
    try:
        spec = SweepFile.model_validate(data)
    except ValidationError as error:
        problems = config_module.validation_problems(error, data, SweepFile)
        raise ConfigError(f"sweep '{path}': " + "; ".join(line for _, line in problems),
                          problems=problems) from None
    if not spec.grid and spec.random is None:
        raise ConfigError(f"sweep '{path}': grid: expected grid: or random: (or both), got neither")
    base, base_dir = _base(spec.base, path)
    for item in overrides:
        config_module.apply_override(base, item)
    folder = Path(folder) if folder else path.parent / (spec.output or f"out/{path.stem}")
    variants = _variants(base, base_dir, _settings(spec, path), folder, path)
    return Sweep(path, folder, variants, spec.contact_sheet, variants[0].config.fps)


def _base(base: str | dict, path: Path) -> tuple[dict, Path]:
    if isinstance(base, dict):
        return copy.deepcopy(base), path.parent
    base_path = path.parent / base
    try:
        return config_module.read(base_path), base_path.parent
    except ConfigError as error:
        raise ConfigError(f"sweep '{path}': base: {error}") from None


def _settings(spec: SweepFile, path: Path) -> list[dict[str, Any]]:
    """Each variant's varied settings: the grid's combinations times the random draws, counted
    from the axes' lengths before any is made (a grid of 10⁹ is refused at once)."""
    count = math.prod(len(values) for values in spec.grid.values()) * (spec.random.n if spec.random else 1)
    if count > MAX_VARIANTS:
        axes = " × ".join(str(len(values)) for values in spec.grid.values()) or "1"
        draws = f" × {spec.random.n} draws" if spec.random else ""
        raise ConfigError(f"sweep '{path}': grid: {axes} values{draws} make {count:,} variants, more "
                          f"than {MAX_VARIANTS}; split the sweep or list fewer values")
    grid = [dict(zip(spec.grid, values)) for values in itertools.product(*spec.grid.values())]
    draws = _draws(spec.random, path) if spec.random else [{}]
    return [{**point, **draw} for point in grid for draw in draws]


def _draws(spec: RandomDraws, path: Path) -> list[dict[str, Any]]:
    for key, bounds in spec.ranges.items():
        if isinstance(bounds, tuple) and bounds[0] > bounds[1]:
            raise ConfigError(f"sweep '{path}': random.ranges.{key}: expected [low, high] with "
                              f"low <= high, got {list(bounds)}")
    rng = np.random.default_rng(spec.seed)
    return [{key: _draw(rng, bounds) for key, bounds in spec.ranges.items()} for _ in range(spec.n)]


def _draw(rng: np.random.Generator, bounds: tuple[Number, Number] | Choices):
    if isinstance(bounds, Choices):
        return copy.deepcopy(bounds.choices[int(rng.integers(len(bounds.choices)))])
    low, high = bounds
    if isinstance(low, int) and isinstance(high, int):
        return int(rng.integers(low, high, endpoint=True))
    return float(f"{rng.uniform(low, high):.4g}")  # short enough for a label and a file


def _variants(base: dict, base_dir: Path, settings: list[dict], folder: Path,
              path: Path) -> list[Variant]:
    """Resolve and check every variant; every problem is reported at once, duplicates dropped."""
    variants, problems = {}, []
    for varied in settings:
        try:
            variant = _variant(base, base_dir, varied, folder)
        except ConfigError as error:
            problems.append(str(error))
            continue
        variants.setdefault(variant.id, variant)
    if problems:
        raise ConfigError(f"sweep '{path}': " + "; ".join(dict.fromkeys(problems)))
    return list(variants.values())


def _variant(base: dict, base_dir: Path, varied: dict, folder: Path) -> Variant:
    """The base with `varied` set, checked, in `<folder>/<id>/`; its mapping names files by
    absolute paths, its output relative to that folder."""
    data = copy.deepcopy(base)
    for key, value in varied.items():
        try:
            config_module.set_key(data, key, copy.deepcopy(value))
        except ConfigError as error:
            raise ConfigError(f"{key}: {error}") from None
    checked = config_module.from_mapping(data, base_dir, source=f"variant {_settings_text(varied)}")
    variant_id = variant_id_of(checked)
    own = (folder / variant_id).absolute()
    data = config_module.absolute_files(data, checked.base_dir)  # it renders alone, from its own folder
    suffix = config_module.format_suffix(checked.output_format)
    data["output"] = {**(data.get("output") or {}), "path": variant_id + suffix}
    config = config_module.from_mapping(data, own, source=str(own / "variant.yaml"))
    return Variant(variant_id, dict(varied), data, config)


def variant_id_of(config: Config) -> str:
    """12 hex digits of a hash of the resolved settings (defaults left out, so that a setting
    added to the project later keeps old ids) and of the input file's content; not of where the
    output goes."""
    settings = config.animation.model_dump(mode="json", exclude_defaults=True)
    settings.get("output", {}).pop("path", None)
    digest = config_module.file_digest(config.input_path) if config.input_path else None
    record = json.dumps({"settings": settings, "input_file": digest}, sort_keys=True)
    return hashlib.sha256(record.encode()).hexdigest()[:12]


def _settings_text(settings: dict) -> str:
    return ", ".join(f"{key}={_short(value)}" for key, value in settings.items())


def value_text(value) -> str:
    """A varied setting's value as the labels and index.html write it (lists and mappings as JSON)."""
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _short(value) -> str:
    text = value_text(value)
    return text if len(text) <= 40 else text[:37] + "..."


def variant_yaml(variant: Variant) -> str:
    """The YAML that renders this variant alone: `animator render <folder>/variant.yaml`."""
    header = f"# sweep variant {variant.id}: {_settings_text(variant.settings)}\n"
    return header + yaml.safe_dump(variant.data, sort_keys=False, allow_unicode=True)
