"""Plugin discovery: import a `.py` file or a module so the transforms it registers become usable.

A plugin is ordinary Python that calls `transforms.register`::

    from transforms import register

    @register("posterize", numpy=True)
    def posterize(frame, ctx, levels: int = 4):
        ...

Installed packages can also offer transforms through the `animator.transforms` entry point group;
those are found lazily by the registry (see `transforms.registry`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from animator.settings.errors import PluginError
from transforms.registry import Registry, active

__all__ = ["is_file_spec", "load_plugin", "load_plugins"]


def is_file_spec(spec: str) -> bool:
    """A spec names a file if it ends in .py or contains a path separator; else a module."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def load_plugins(
    specs: Iterable[str], base_dir: str | Path | None = None, registry: Registry | None = None
) -> list[str]:
    """Import every plugin in `specs` (files relative to `base_dir`, or module names), in order.

    Returns the names of the transforms they registered. Raises PluginError on the first failure.
    """
    registered = []
    for spec in specs:
        registered += load_plugin(spec, base_dir, registry)
    return registered


def load_plugin(spec: str, base_dir: str | Path | None = None, registry: Registry | None = None) -> list[str]:
    """Import one plugin; returns the transform names it registered (none if already loaded)."""
    registry = registry or active()
    if not isinstance(spec, str) or not spec.strip():
        raise PluginError(f"plugin {spec!r}: expected a .py file path or a module name")
    if is_file_spec(spec):
        path = Path(spec).expanduser()
        path = (Path(base_dir or Path.cwd()) / path).resolve()
        return _import(registry, spec, _file_key(path), lambda: _exec_file(spec, path))
    return _import(registry, spec, spec, lambda: _import_module(spec))


def _file_key(path: Path) -> str:
    """The path and a hash of its content: a file fixed since it was imported is imported again."""
    try:
        return f"{path}#{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    except OSError:
        return str(path)


def _import(registry: Registry, spec: str, key: str, load) -> list[str]:
    """Run `load` with `spec` recorded as the source; return the names it added."""
    if key in registry.loaded_plugins:
        return []
    before = set(registry.available())
    with registry.loading(spec):
        load()
    registry.loaded_plugins.add(key)
    return sorted(set(registry.available()) - before)


def _exec_file(spec: str, path: Path) -> None:
    try:
        found = path.is_file()
    except (OSError, ValueError) as err:  # a name too long, a NUL, a lone surrogate
        why = getattr(err, "strerror", None) or err
        raise PluginError(f"plugin {spec!r}: cannot open {path} ({why})") from None
    if not found:
        raise PluginError(f"plugin {spec!r}: file not found (looked in {path})")
    name = "animator_plugin_" + re.sub(r"\W", "_", path.stem)
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        module_spec.loader.exec_module(module)
    except PluginError:  # from register(): already names the plugin
        del sys.modules[name]
        raise
    except SyntaxError as error:
        del sys.modules[name]
        raise PluginError(f"plugin {spec!r}: syntax error at line {error.lineno}: {error.msg}") from None
    except (Exception, SystemExit) as error:  # a plugin's sys.exit() must not end the command
        del sys.modules[name]
        raise PluginError(f"plugin {spec!r}: import failed: {type(error).__name__}: {error}") from error


def _import_module(spec: str) -> None:
    try:
        importlib.import_module(spec)
    except PluginError:
        raise
    except SyntaxError as error:
        where = Path(error.filename or "?").name
        raise PluginError(
            f"plugin {spec!r}: syntax error in {where} at line {error.lineno}: {error.msg}"
        ) from None
    except ModuleNotFoundError as error:
        if error.name and spec.startswith(error.name):
            raise PluginError(
                f"plugin {spec!r}: no module named {error.name!r} (not installed or not on "
                "sys.path; a file needs the .py suffix)"
            ) from None
        raise PluginError(f"plugin {spec!r}: import failed: {error}") from error
    except (Exception, SystemExit) as error:
        raise PluginError(f"plugin {spec!r}: import failed: {type(error).__name__}: {error}") from error
