"""deepdream-animator: endless DeepDream animations from a still image.

    import animator
    animator.render("configs/zoom.yaml", frames=12)      # the GIF, as `animator render` makes it
    for frame in animator.frames("configs/zoom.yaml", force=True): ...   # numpy frames

Heavy modules (Keras, the backend) are imported lazily: importing this package is cheap.
"""

__version__ = "0.1.0"

__all__ = ["Dreamer", "__version__", "frames", "load_config", "render"]

_LAZY = {
    "Dreamer": "animator.engine.dream",
    "render": "animator.api",
    "frames": "animator.api",
    "load_config": "animator.api",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'animator' has no attribute '{name}'")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
