"""What the dream maximises: a weighted sum of terms, each a small object with a value.

The engine adds the terms and takes the gradient of the sum by autodiff. Terms that look at the
model's activations of a batch of tiles (`on_tiles`):

- `Term`: a layer's mean or mean-square (`l2`) activation, optionally one channel (`mixed4:97`);
- `Guide`: Google's DeepDream notebook's guided dream: each position's features dotted with
  their best-matching feature of a guide image at the same layer.

and terms that look at the whole image: `TotalVariation` (weight >= 0: smoother, less noisy
dreams) and `StayNear` (mean square distance to the octave's base image: a dream that keeps more
of the photo). Every weight may be a schedule of the frame index (`animator.schedule`); the
weights reach the compiled octave as one tensor, so changing them does not recompile it.

Layers on the command line read `block4_conv3,block5_conv1:0.5` (a trailing `:WEIGHT` with a
decimal point, or `=WEIGHT`, is a weight; a trailing `:INTEGER` is a channel); in YAML they are a
mapping `{block4_conv3: 1.0}`. The `objective:` list of the YAML adds the other terms::

    objective: [{guide: flower.jpg, weight: 0.5}, {tv: 0.1}, {stay_near: "0:(0), 60:(1)"}]

A `{layers: {...}, reduction: l2}` item adds layer terms beside (or instead of) `layers:`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from animator import schedule
from animator.errors import ConfigError

REDUCTIONS = ("mean", "l2")
Weight = float | schedule.Schedule


def weight_at(weight: Weight, t: int) -> float:
    """A weight's value at frame `t` (a number, or a schedule of the frame index)."""
    return float(weight(t)) if isinstance(weight, schedule.Schedule) else float(weight)


def _weight_text(weight: Weight) -> str:
    return f"{weight:g}" if isinstance(weight, (int, float)) else repr(weight.source)


@dataclass(frozen=True)
class Term:
    """One layer (and optionally one channel of it) with its weight: its mean activation, or
    with `reduction` l2 its mean square."""

    layer: str
    weight: Weight = 1.0
    channel: int | None = None
    reduction: str = "mean"
    on_tiles = True
    needs = None

    @property
    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def value(self, features: dict, given=None):
        from keras import ops

        act = ops.cast(features[self.layer], "float32")
        if self.channel is not None:
            act = act[..., self.channel]
        return ops.mean(ops.square(act)) if self.reduction == "l2" else ops.mean(act)

    def __str__(self) -> str:
        name = self.layer if self.channel is None else f"{self.layer}:{self.channel}"
        return f"{name}={_weight_text(self.weight)}"


@dataclass(frozen=True)
class Guide:
    """A guide image (a path) whose features the dream grows toward, at `layers`.

    Per layer, each position's features are dotted with every feature of the guide at that layer
    and the best match counts (Google's notebook's `objective_guide`). The guide's features come
    in as `given` (a layer -> (positions, channels) mapping, see `guide_features`): they are
    computed once per octave size, outside the compiled octave.
    """

    image: str
    weight: Weight = 1.0
    layers: tuple[str, ...] = ()
    on_tiles = True
    needs = "guide"

    def value(self, features: dict, given):
        from keras import ops

        total = 0.0
        for layer in self.layers:
            act = ops.cast(features[layer], "float32")
            dots = ops.matmul(ops.reshape(act, (-1, act.shape[-1])), ops.transpose(given[layer]))
            total = total + ops.mean(ops.max(dots, axis=1))
        return total

    def __str__(self) -> str:
        return f"guide {self.image}={_weight_text(self.weight)}"


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


@dataclass(frozen=True)
class TotalVariation:
    """Minus the image's total variation (mean absolute difference of neighbouring pixels, in
    grey levels): a positive weight smooths the dream."""

    weight: Weight = 1.0
    on_tiles = False
    needs = None
    layers = ()

    def value(self, image, given=None):
        from keras import ops

        rows = ops.mean(ops.abs(image[1:] - image[:-1]))
        columns = ops.mean(ops.abs(image[:, 1:] - image[:, :-1]))
        return -(rows + columns)

    def __str__(self) -> str:
        return f"tv={_weight_text(self.weight)}"


@dataclass(frozen=True)
class StayNear:
    """Minus the mean square distance to the octave's base image (`given`), in grey levels
    over 4 (a few grey levels off counts about as much as a layer's mean): a positive weight
    keeps more of the input."""

    weight: Weight = 1.0
    on_tiles = False
    needs = "base"
    layers = ()

    def value(self, image, given):
        from keras import ops

        return -ops.mean(ops.square((image - given) / 4.0))

    def __str__(self) -> str:
        return f"stay_near={_weight_text(self.weight)}"


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
                total = total + weights[i] * term.value(seen, inputs.get(input_key(i)))
        return total

    def __str__(self) -> str:
        return ", ".join(str(term) for term in self.terms)


def input_key(index: int) -> str:
    """The key of term `index`'s tensor in the compiled octave's `inputs`."""
    return f"term{index}"


def _parse_key(key: str) -> tuple[str, int | None]:
    """`mixed4:97` -> ("mixed4", 97); `mixed4` -> ("mixed4", None)."""
    name, sep, channel = key.partition(":")
    if not sep:
        return name, None
    if not channel.isdigit():
        raise ConfigError(f"layer {key!r}: the channel after ':' must be an integer, got {channel!r}")
    return name, int(channel)


def parse_weight(value, path: str) -> Weight:
    """A number, or a schedule of the frame index (keyframes, an expression)."""
    parsed = schedule.parse(value, path)  # a number too: nan would make the dream do nothing
    return parsed if parsed.constant is None else parsed.constant


def parse_layers(value: str | dict | list, reduction: str = "mean", path: str = "layers") -> tuple[Term, ...]:
    """Terms from a mapping `{layer[:channel]: weight}`, a list of names, or a CLI string."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list):
        value = dict(_split_weight(item) for item in value)
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{path}: expected a mapping of layer names to weights, got {value!r}")
    terms = []
    for key, weight in value.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float, str, Mapping)):
            raise ConfigError(f"{path}.{key}: the weight must be a number or a schedule, got {weight!r}")
        name, channel = _parse_key(str(key))
        terms.append(Term(name, parse_weight(weight, f"{path}.{key}"), channel, reduction))
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
        weight = float(text)
    except ValueError:
        raise ConfigError(f"layers: cannot read a weight in {item!r}; write LAYER:0.5") from None
    return parse_weight(weight, f"layers: {item!r}")


# An `objective:` item: its one key (besides `weight`, `layers`, `reduction`) names the term.
ITEM_KEYS = ("layers", "guide", "tv", "stay_near")


def parse_items(items: Sequence, path: str = "dream.objective") -> list:
    """The terms of an `objective:` list (guides with no layers get them in `make_objective`)."""
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"{path}: expected a list of terms, got {items!r}")
    terms = []
    for index, item in enumerate(items):
        terms.extend(_parse_item(item, f"{path}[{index}]"))
    return terms


def _parse_item(item, path: str) -> list:
    if isinstance(item, (Term, Guide, TotalVariation, StayNear)):
        return [item]
    kinds = [key for key in ITEM_KEYS if isinstance(item, Mapping) and key in item]
    if "layers" in kinds and len(kinds) > 1:  # a guide's own layers
        kinds.remove("layers")
    if len(kinds) != 1:
        raise ConfigError(f"{path}: expected one of {list(ITEM_KEYS)} (with an optional weight), "
                          f"got {item!r}")
    kind, allowed = kinds[0], {"layers": {"reduction"}, "guide": {"weight", "layers"}}
    unknown = set(item) - {kind} - allowed.get(kind, set())
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} for a {kind} term")
    if kind == "layers":
        reduction = item.get("reduction", "mean")
        _check_reduction(reduction, f"{path}.reduction")
        return list(parse_layers(item["layers"], reduction, f"{path}.layers"))
    if kind == "guide":
        layers = item.get("layers") or ()
        layers = [layers] if isinstance(layers, str) else list(layers)
        return [Guide(str(item["guide"]), parse_weight(item.get("weight", 1.0), f"{path}.weight"),
                      tuple(str(layer) for layer in layers))]
    term = {"tv": TotalVariation, "stay_near": StayNear}[kind]
    return [term(parse_weight(item[kind], f"{path}.{kind}"))]


def _check_reduction(reduction: str, path: str) -> None:
    if reduction not in REDUCTIONS:
        raise ConfigError(f"{path}: expected one of {list(REDUCTIONS)}, got {reduction!r}")


def make_objective(layers, reduction: str = "mean", items: Sequence = (), guide: str | None = None,
                   default_layers=None) -> Objective:
    """An Objective from any accepted `layers` form (`reduction` mean or l2), the `objective:`
    list's `items` and a `guide` image path. Without a term that names layers, `default_layers`
    are dreamed (the model's own: a function that looks them up, called only then); a guide
    without layers guides every dreamed layer."""
    _check_reduction(reduction, "objective")
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
