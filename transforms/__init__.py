"""Frame transforms: a registry of small pure functions applied between dreamed frames.

Importing this package registers the built-ins (geometric, shifts, filters) without loading Keras;
Keras is imported inside the transforms, when a frame is first transformed.
"""

from transforms import filters, geometric, shifts  # noqa: F401  (register the built-ins)
from transforms.chain import Chain, Step, StepSpec, apply, build_chain, read_step
from transforms.context import Context
from transforms.filters import match_color
from transforms.plugins import load_plugin, load_plugins
from transforms.registry import (
    Profile,
    Registry,
    Transform,
    active,
    available,
    describe,
    get,
    isolated,
    parameters,
    register,
)

__all__ = [
    "Chain",
    "Context",
    "Profile",
    "Registry",
    "Step",
    "StepSpec",
    "Transform",
    "active",
    "apply",
    "available",
    "build_chain",
    "describe",
    "get",
    "isolated",
    "parameters",
    "read_step",
    "load_plugin",
    "load_plugins",
    "match_color",
    "register",
]
