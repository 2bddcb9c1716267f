"""What the dream maximises: a weighted sum of terms, each a small object with a value.

The engine adds the terms and takes the gradient of the sum by autodiff. Terms that look at the
model's activations of a batch of tiles (`on_tiles`):

- `Term`: a layer's mean or mean-square (`l2`) activation, optionally one channel (`mixed4:97`);
- `Guide`: Google's DeepDream notebook's guided dream: each position's features dotted with
  their best-matching feature of a guide image at the same layer.

and terms that look at the whole image: `TotalVariation` (weight >= 0: smoother, less noisy
dreams) and `StayNear` (mean square distance to the octave's base image: a dream that keeps more
of the photo). Every weight may be a schedule of the frame index (`animator.settings.schedule`); the
weights reach the compiled octave as one tensor, so changing them does not recompile it.

The terms and their grammar are the config's (`animator.config.objective`); this module gives
each its value and sums them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from animator.config.objective import (  # noqa: F401  (the terms an Objective sums)
    Guide,
    StayNear,
    Term,
    TotalVariation,
    check_reduction,
    parse_items,
    parse_layers,
    weight_at,
)
from animator.settings.errors import ConfigError


def _layer_value(term: Term, features: dict, given=None):
    from keras import ops

    act = ops.cast(features[term.layer], "float32")
    if term.channel is not None:
        act = act[..., term.channel]
    return ops.mean(ops.square(act)) if term.reduction == "l2" else ops.mean(act)



def _guide_value(term: Guide, features: dict, given):
    from keras import ops

    total = 0.0
    for layer in term.layers:
        act = ops.cast(features[layer], "float32")
        dots = ops.matmul(ops.reshape(act, (-1, act.shape[-1])), ops.transpose(given[layer]))
        total = total + ops.mean(ops.max(dots, axis=1))
    return total



def _tv_value(term: TotalVariation, image, given=None):
    from keras import ops

    rows = ops.mean(ops.abs(image[1:] - image[:-1]))
    columns = ops.mean(ops.abs(image[:, 1:] - image[:, :-1]))
    return -(rows + columns)



def _stay_near_value(term: StayNear, image, given):
    from keras import ops

    return -ops.mean(ops.square((image - given) / 4.0))


def guide_features(activations, layers: Sequence[str]) -> dict:
    """The guide's features per layer from the model's activations of the guide image, as
    (positions, channels) float32, scaled by the channel count and the mean absolute activation so that a
    guide of weight 1 pulls about as hard as a layer's mean of weight 1."""
    from keras import ops

    given = {}
    for layer, act in zip(layers, activations):
        act = ops.cast(act, "float32")
        features = ops.reshape(act, (-1, act.shape[-1]))
        scale = ops.maximum(ops.mean(ops.abs(features)), 1e-6) * act.shape[-1]
        given[layer] = features / scale
    return given


# Each term's value: its weight's factor, from the activations of a batch of tiles (`on_tiles`)
# or from the whole image.
VALUES = {Term: _layer_value, Guide: _guide_value, TotalVariation: _tv_value,
          StayNear: _stay_near_value}


@dataclass(frozen=True)
class Objective:
    """A weighted sum of terms; `weights(t)` are their weights at frame `t`."""

    terms: tuple

    @property
    def layers(self) -> list[str]:
        """The distinct layer names, in first-use order (the feature model's outputs)."""
        return list(dict.fromkeys(layer for term in self.terms for layer in term.layers))

    @property
    def has_image_terms(self) -> bool:
        return any(not term.on_tiles for term in self.terms)

    def weights(self, t: int = 0):
        """The terms' weights at frame `t` as a float32 array, one per term."""
        import numpy as np

        return np.array([weight_at(term.weight, t) for term in self.terms], np.float32)

    def tile_value(self, activations, weights, inputs):
        """The value of the terms that look at the model's activations of a batch of tiles."""
        features = dict(zip(self.layers, activations))
        return self._sum(True, features, weights, inputs)

    def image_value(self, image, weights, inputs):
        """The value of the terms that look at the whole image (H×W×3, 0..255)."""
        return self._sum(False, image, weights, inputs)

    def _sum(self, on_tiles: bool, seen, weights, inputs):
        total = 0.0
        for i, term in enumerate(self.terms):
            if term.on_tiles == on_tiles:
                total = total + weights[i] * VALUES[type(term)](term, seen, inputs.get(input_key(i)))
        return total

    def __str__(self) -> str:
        return ", ".join(str(term) for term in self.terms)


def input_key(index: int) -> str:
    """The key of term `index`'s tensor in the compiled octave's `inputs`."""
    return f"term{index}"


def make_objective(layers, reduction: str = "mean", items: Sequence = (), guide: str | None = None,
                   default_layers=None) -> Objective:
    """An Objective from any accepted `layers` form (`reduction` mean or l2), the `objective:`
    list's `items` and a `guide` image path. Without a term that names layers, `default_layers`
    are dreamed (the model's own: a function that looks them up, called only then); a guide
    without layers guides every dreamed layer."""
    check_reduction(reduction, "objective")
    terms = parse_items(items) + ([Guide(guide)] if guide else [])
    if layers:
        layer_terms = list(layers) if isinstance(layers, tuple) and all(isinstance(t, Term) for t in layers) \
            else list(parse_layers(layers, reduction))
        terms = layer_terms + terms
    elif not any(term.layers for term in terms):
        if default_layers is None:
            raise ConfigError("layers: no layer to dream; name at least one")
        terms = list(parse_layers(default_layers(), reduction)) + terms
    dreamed = tuple(dict.fromkeys(term.layer for term in terms if isinstance(term, Term)))
    terms = [Guide(t.image, t.weight, dreamed) if isinstance(t, Guide) and not t.layers else t
             for t in terms]
    return Objective(tuple(terms))
