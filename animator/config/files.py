"""Which settings of a config name files, and the one rule that maps them: made absolute,
checked inside a folder (the studio), fingerprinted by content."""

from __future__ import annotations

import copy
import functools
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

from animator.settings import params
from animator.settings.errors import ConfigError
from animator.settings.params import BUNDLED, IMAGENET, MODEL_FILE_SUFFIXES

# An image input with one of these suffixes is a video given the wrong way (read_image would
# give its first frame at best).
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg")


def names_model_file(model) -> bool:
    """`dream.model` names a model file (else a zoo name)."""
    return isinstance(model, str) and model.endswith(MODEL_FILE_SUFFIXES)


def names_weights_file(weights) -> bool:
    """`dream.weights` names a weights file (else a keyword, or unset: the model's own)."""
    return isinstance(weights, str) and weights not in ("none", BUNDLED, IMAGENET)


def names_file(key: str, value) -> bool:
    """Whether `value`, given to the file setting at `key` (a key path), is a file's path rather
    than one of the setting's keywords (a zoo model's name, `imagenet` weights)."""
    keywords = {"dream.model": names_model_file, "dream.weights": names_weights_file}
    return keywords[key](value) if key in keywords else isinstance(value, str)


def map_files(data: Mapping, change: Callable[[str, str], str]) -> dict:
    """A copy of a config's mapping (as parsed, checked or not) with each file it names replaced by
    `change(key path, file)`: the input image or video, plugin files, a transform named from a
    file (`file.py:name`: the file), every setting the declarations mark as naming a file
    (`params.Parameter.file`: a model or weights file, a guide image, the output), and the guide
    images of an `objective:` list (its items' keys take the dream settings' declarations), and
    the soundtrack.

    The one place that says which settings name files: making them absolute (`absolute_files`),
    the studio's check that they lie inside its folder, and the content hashes of resume all go
    through it.
    """
    from transforms.plugins import is_file_spec

    data = copy.deepcopy(dict(data))
    source = data.get("input")
    if isinstance(source, str):
        data["input"] = change("input", source)
    elif isinstance(source, dict) and isinstance(source.get("video"), str):
        source["video"] = change("input.video", source["video"])
    if isinstance(data.get("plugins"), list):
        data["plugins"] = [change(f"plugins[{index}]", spec) if isinstance(spec, str) and is_file_spec(spec)
                           else spec for index, spec in enumerate(data["plugins"])]
    if isinstance(data.get("transforms"), list):
        data["transforms"] = [_step_file(item, functools.partial(change, f"transforms[{index}]"))
                              for index, item in enumerate(data["transforms"])]
    for section, table in params.SECTIONS.items():
        node = data if section == "animation" else data.get(section)
        prefix = "" if section == "animation" else f"{section}."
        for name in [name for name, p in table.items() if p.file] if isinstance(node, dict) else []:
            if names_file(prefix + name, node.get(name)):
                node[name] = change(prefix + name, node[name])
    audio = data.get("audio")
    if isinstance(audio, str):
        data["audio"] = change("audio", audio)
    elif isinstance(audio, dict) and isinstance(audio.get("path"), str):
        audio["path"] = change("audio.path", audio["path"])
    dream = data.get("dream")
    if isinstance(dream, dict) and isinstance(dream.get("objective"), list):
        dream["objective"] = [_item_files(item, f"dream.objective[{index}]", change)
                              for index, item in enumerate(dream["objective"])]
    return data


def _item_files(item, path: str, change: Callable[[str, str], str]):
    """An `objective:` item with the files it names changed: its keys that are also dream settings
    declared as files (`guide`). The objective reads any value as a path (`str(value)`)."""
    if not isinstance(item, dict):
        return item
    return {key: change(f"{path}.{key}", str(value))
            if value is not None and getattr(params.DREAM.get(str(key)), "file", None) else value
            for key, value in item.items()}


def _step_file(item, change: Callable[[str], str]):
    """A transform step named `file.py:name` with its file changed; any other step as it is."""
    from transforms import read_step

    try:
        spec = read_step(item)
    except ConfigError:  # not a step: the config's check says so
        return item
    return spec.item(change(spec.plugin)) if spec.names_file else item


def guide_files(data: Mapping) -> dict[str, str]:
    """The guide images a config's mapping names, by key path (`dream.guide`,
    `dream.objective[1].guide`)."""
    dream = data.get("dream") if isinstance(data.get("dream"), Mapping) else {}
    found = {"dream.guide": dream["guide"]} if isinstance(dream.get("guide"), str) else {}
    objective = dream.get("objective")
    for index, item in enumerate(objective if isinstance(objective, list) else []):
        if isinstance(item, Mapping) and isinstance(item.get("guide"), str):
            found[f"dream.objective[{index}].guide"] = item["guide"]
    return found


def files_named(data: Mapping) -> dict[str, str]:
    """The files a config's mapping names (`map_files`), by key path (`input`, `input.video`,
    `plugins[0]`, `transforms[2]`, `dream.model`, `dream.weights`, `dream.guide`,
    `dream.objective[1].guide`, `output.path`, `audio.path`)."""
    found = {}
    map_files(data, lambda key, file: found.setdefault(key, file))
    return found


def absolute_files(data: Mapping, base_dir: str | Path) -> dict:
    """A copy of a config's mapping with the files it names (`map_files`) made absolute (relative
    ones are from `base_dir`, the config's folder), so that it means the same from any folder."""
    return map_files(data, lambda key, file: str((Path(base_dir) / file).absolute()))


def _plain(value):
    """A default as YAML writes it plainly: tuples as lists."""
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def file_digest(path: Path) -> str | None:
    """16 hex digits of a hash of a regular file's content; None if it is not one or cannot be read."""
    if not path.is_file():  # a pipe could block the read forever
        return None
    digest = hashlib.sha256()
    try:  # in chunks: an input video may be larger than the memory
        with open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()[:16]
