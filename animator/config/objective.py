"""The objective's grammar: what a config or a command line asks the dream to maximise.

Layers on the command line read `block4_conv3,block5_conv1:0.5` (a trailing `:WEIGHT` with a
decimal point, or `=WEIGHT`, is a weight; a trailing `:INTEGER` is a channel); in YAML they are a
mapping `{block4_conv3: 1.0}`. The `objective:` list of the YAML adds the other terms::

    objective: [{guide: flower.jpg, weight: 0.5}, {tv: 0.1}, {stay_near: "0:(0), 60:(1)"}]

A `{layers: {...}, reduction: l2}` item adds layer terms beside (or instead of) `layers:`. Each
term is a small frozen record with its weight (a number, or a schedule of the frame index); what
a term is worth on an image is the engine's (`animator.engine.objective`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from animator.settings import schedule
from animator.settings.errors import ConfigError

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

    def __str__(self) -> str:
        return f"guide {self.image}={_weight_text(self.weight)}"


@dataclass(frozen=True)
class TotalVariation:
    """Minus the image's total variation (mean absolute difference of neighbouring pixels, in
    grey levels): a positive weight smooths the dream."""

    weight: Weight = 1.0
    on_tiles = False
    needs = None
    layers = ()

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

    def __str__(self) -> str:
        return f"stay_near={_weight_text(self.weight)}"


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
ITEM_OPTIONS = {"layers": ("reduction",), "guide": ("weight", "layers")}  # the other keys a term takes


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
    kind = kinds[0]
    unknown = set(item) - {kind} - set(ITEM_OPTIONS.get(kind, ()))
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} for a {kind} term")
    if kind == "layers":
        reduction = item.get("reduction", "mean")
        check_reduction(reduction, f"{path}.reduction")
        return list(parse_layers(item["layers"], reduction, f"{path}.layers"))
    if kind == "guide":
        layers = item.get("layers") or ()
        layers = [layers] if isinstance(layers, str) else list(layers)
        return [Guide(str(item["guide"]), parse_weight(item.get("weight", 1.0), f"{path}.weight"),
                      tuple(str(layer) for layer in layers))]
    term = {"tv": TotalVariation, "stay_near": StayNear}[kind]
    return [term(parse_weight(item[kind], f"{path}.{kind}"))]


def check_reduction(reduction: str, path: str) -> None:
    if reduction not in REDUCTIONS:
        raise ConfigError(f"{path}: expected one of {list(REDUCTIONS)}, got {reduction!r}")
