"""What the dream maximises: a weighted sum over layers of their mean or mean-square activation.

A term names a layer and optionally one channel: `mixed4:97`. On the command line a list reads
`block4_conv3,block5_conv1:0.5` (a trailing `:WEIGHT` with a decimal point, or `=WEIGHT`, is a
weight; a trailing `:INTEGER` is a channel); in YAML it is a mapping `{block4_conv3: 1.0}`.
"""

from __future__ import annotations

from dataclasses import dataclass

from animator.errors import ConfigError

REDUCTIONS = ("mean", "l2")


@dataclass(frozen=True)
class Term:
    """One layer (and optionally one channel of it) with its weight in the sum."""

    layer: str
    weight: float = 1.0
    channel: int | None = None

    def __str__(self) -> str:
        name = self.layer if self.channel is None else f"{self.layer}:{self.channel}"
        return f"{name}={self.weight:g}"


@dataclass(frozen=True)
class Objective:
    """A weighted sum of `reduction` (mean or l2: mean square) of layer activations."""

    terms: tuple[Term, ...]
    reduction: str = "mean"

    @property
    def layers(self) -> list[str]:
        """The distinct layer names, in first-use order (the feature model's outputs)."""
        return list(dict.fromkeys(term.layer for term in self.terms))

    has_image_terms = False

    def weights(self):
        """The terms' weights as a float32 array, one per term."""
        import numpy as np

        return np.array([term.weight for term in self.terms], np.float32)

    def __call__(self, activations):
        """The objective's value given the feature model's outputs (one per name in `layers`)."""
        return self.tile_value(activations, self.weights(), {})

    def tile_value(self, activations, weights, inputs):
        """The value of the terms that look at the model's activations of a batch of tiles."""
        from keras import ops

        index = {name: i for i, name in enumerate(self.layers)}
        total = 0.0
        for i, term in enumerate(self.terms):
            act = ops.cast(activations[index[term.layer]], "float32")
            if term.channel is not None:
                act = act[..., term.channel]
            value = ops.mean(ops.square(act)) if self.reduction == "l2" else ops.mean(act)
            total = total + weights[i] * value
        return total


def _parse_key(key: str) -> tuple[str, int | None]:
    """`mixed4:97` -> ("mixed4", 97); `mixed4` -> ("mixed4", None)."""
    name, sep, channel = key.partition(":")
    if not sep:
        return name, None
    if not channel.isdigit():
        raise ConfigError(f"layer {key!r}: the channel after ':' must be an integer, got {channel!r}")
    return name, int(channel)


def parse_layers(value: str | dict | list) -> tuple[Term, ...]:
    """Terms from a mapping `{layer[:channel]: weight}`, a list of names, or a CLI string."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list):
        value = dict(_split_weight(item) for item in value)
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"layers: expected a mapping of layer names to weights, got {value!r}")
    terms = []
    for key, weight in value.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ConfigError(f"layers.{key}: the weight must be a number, got {weight!r}")
        name, channel = _parse_key(str(key))
        terms.append(Term(name, float(weight), channel))
    return tuple(terms)


def _split_weight(item: str) -> tuple[str, float]:
    """`a=0.5` or `a:0.5` -> ("a", 0.5); `a:97` -> ("a:97", 1.0); `a:97:0.5` -> ("a:97", 0.5)."""
    if "=" in item:
        key, _, weight = item.partition("=")
        return key, _to_weight(item, weight)
    head, sep, tail = item.rpartition(":")
    if sep and not tail.isdigit():
        return head, _to_weight(item, tail)
    return item, 1.0


def _to_weight(item: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"layers: cannot read a weight in {item!r}; write LAYER:0.5") from None


def make_objective(layers, reduction: str = "mean") -> Objective:
    """An Objective from any accepted `layers` form; `reduction` is mean or l2."""
    if reduction not in REDUCTIONS:
        raise ConfigError(f"objective: expected one of {list(REDUCTIONS)}, got {reduction!r}")
    terms = layers if isinstance(layers, tuple) and all(isinstance(t, Term) for t in layers) \
        else parse_layers(layers)
    return Objective(terms, reduction)
