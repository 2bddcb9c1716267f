"""deepdream-animator: endless DeepDream animations from a still image.

Heavy modules (Keras, the backend) are imported lazily: importing this package is cheap.
"""

__version__ = "0.1.0"

__all__ = ["Dreamer", "__version__"]


def __getattr__(name):
    if name == "Dreamer":
        from animator.dream import Dreamer

        return Dreamer
    raise AttributeError(name)
