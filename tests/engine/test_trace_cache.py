"""TensorFlow's trace cache: a later Dreamer (or process) calls the stored trace instead of
tracing, and dreams the same pixels; what cannot be cached is traced as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from animator.engine import trace_cache
from animator.engine.dream import Dreamer
from tests.engine.engine_cases import frame, tiny_model_file

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's cache")

# Every term kind: tiles' layers, a guide's features and the octave's base as inputs, tv.
OBJECTIVE = [{"tv": 0.5}, {"stay_near": 0.2}]


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "traces"
    monkeypatch.setenv(trace_cache.ENV_VAR, str(folder))
    return folder


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> str:
    return tiny_model_file(tmp_path_factory.mktemp("model"))


def guide_file(folder: Path) -> str:
    from PIL import Image

    path = folder / "guide.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 255, (24, 24, 3), np.uint8)).save(path)
    return str(path)


def dream(dreamer: Dreamer, **settings) -> np.ndarray:
    values = {"octaves": 2, "octave_scale": 1.3, "steps": 3, "jitter": 5, **settings}
    return dreamer.dream(frame(), **values)


def test_a_second_dreamer_calls_the_stored_trace_and_dreams_the_same_pixels(cache, model_file, tmp_path):
    guide = guide_file(tmp_path)
    first = Dreamer(model=model_file, layers={"c1": 1.0, "deep:3": 0.5}, objective=OBJECTIVE,
                    guide=guide, xla=False)
    traced = dream(first)
    # the guide's features differ in size per octave: one trace (and entry) each
    traces = first._octave.traces
    assert traces == 2 and first._octave.restored == 0
    assert len(list(cache.glob(f"*{trace_cache.SUFFIX}"))) == traces

    second = Dreamer(model=model_file, layers={"c1": 1.0, "deep:3": 0.5}, objective=OBJECTIVE,
                     guide=guide, xla=False)
    restored = dream(second)
    assert (second._octave.traces, second._octave.restored) == (0, traces)
    np.testing.assert_array_equal(restored, traced)
    # a later frame calls them again
    np.testing.assert_array_equal(dream(second), traced)
    assert (second._octave.traces, second._octave.restored) == (0, traces)


def test_what_the_trace_reads_is_in_the_key_and_the_weights_are_not(cache, model_file):
    base = Dreamer(model=model_file, layers={"c1": 1.0}, xla=False)
    dream(base)
    # another weight: the same trace
    reweighted = Dreamer(model=model_file, layers={"c1": 3.0}, xla=False)
    dream(reweighted)
    assert reweighted._octave.restored == 1
    # another layer, reduction, normalisation, layout or precision: traced anew
    others = [(Dreamer(model=model_file, layers={"deep": 1.0}, xla=False), {}),
              (Dreamer(model=model_file, layers={"c1": 1.0}, objective="l2", xla=False), {}),
              (Dreamer(model=model_file, layers={"c1": 1.0}, xla=False), {"normalisation": "mean_abs"}),
              (Dreamer(model=model_file, layers={"c1": 1.0}, xla=False), {"tile_size": 32}),
              (Dreamer(model=model_file, layers={"c1": 1.0}, precision="bfloat16", xla=False), {})]
    for dreamer, settings in others:
        dream(dreamer, **settings)
        # (a tiled frame's program is per octave size: one trace each)
        assert dreamer._octave.traces >= 1 and dreamer._octave.restored == 0, settings


def test_a_trace_is_shared_across_processes(cache, model_file):
    script = ("import json, sys\n"
              "from animator.engine.dream import Dreamer\n"
              "from tests.engine.engine_cases import frame\n"
              "d = Dreamer(model=sys.argv[1], layers='c1,deep:3', xla=False)\n"
              "out = d.dream(frame(), octaves=2, octave_scale=1.3, steps=3, jitter=5)\n"
              "print(json.dumps([d._octave.traces, d._octave.restored, out.tolist()]))\n")
    env = {**os.environ, trace_cache.ENV_VAR: str(cache), "KERAS_BACKEND": "tensorflow"}
    runs = [json.loads(subprocess.run([sys.executable, "-c", script, model_file], env=env, check=True,
                                      capture_output=True, text=True, cwd=Path(__file__).parents[2]
                                      ).stdout.splitlines()[-1]) for _ in range(2)]
    assert [run[:2] for run in runs] == [[1, 0], [0, 1]]
    np.testing.assert_array_equal(np.array(runs[1][2]), np.array(runs[0][2]))


def test_an_unreadable_entry_is_traced_again(cache, model_file):
    dream(Dreamer(model=model_file, layers={"c1": 1.0}, xla=False))
    (entry,) = cache.glob(f"*{trace_cache.SUFFIX}")
    reference = dream(Dreamer(model=model_file, layers={"c1": 1.0}, xla=False))
    for broken in (b"", entry.read_bytes()[:200], b"\xff" * 64):
        entry.write_bytes(broken)
        dreamer = Dreamer(model=model_file, layers={"c1": 1.0}, xla=False)
        np.testing.assert_array_equal(dream(dreamer), reference)
        assert (dreamer._octave.traces, dreamer._octave.restored) == (1, 0)


def test_a_keras_model_object_or_a_foreign_layer_is_not_cached(cache):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="c")(inputs))
    dreamer = Dreamer(model=model, layers={"c": 1.0}, xla=False)
    dream(dreamer, octaves=1)
    assert not cache.exists()

    class Doubled(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    foreign = keras.Model(inputs, Doubled()(model(inputs)))
    assert trace_cache.model_fingerprint(foreign) is None
    assert trace_cache.model_fingerprint(model) is not None


def test_a_folder_that_cannot_be_written_only_costs_the_trace(tmp_path, monkeypatch, model_file):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(trace_cache.ENV_VAR, str(blocker / "traces"))
    dreamer = Dreamer(model=model_file, layers={"c1": 1.0}, xla=False)
    dream(dreamer)
    assert dreamer._octave.traces == 1


def test_off_turns_the_cache_off(tmp_path):
    assert trace_cache.folder({trace_cache.ENV_VAR: "off"}) is None
    expected = tmp_path / "deepdream-animator" / "tensorflow"
    assert trace_cache.folder({"XDG_CACHE_HOME": str(tmp_path)}) == expected


def test_the_cache_keeps_the_most_recently_used_entries(cache, monkeypatch):
    monkeypatch.setattr(trace_cache, "MAX_ENTRIES", 3)
    cache.mkdir()
    for age in range(5):
        path = cache / f"e{age}{trace_cache.SUFFIX}"
        path.write_bytes(b"x")
        os.utime(path, (1000 - age, 1000 - age))
    trace_cache._evict(cache)
    assert sorted(p.name for p in cache.iterdir()) == [f"e{i}{trace_cache.SUFFIX}" for i in range(3)]


def test_renaming_reaches_the_functions_a_loop_calls():
    from tensorflow.core.framework import function_pb2

    function = function_pb2.FunctionDef()
    function.signature.name = "outer"
    node = function.node_def.add()
    node.op = "While"
    node.attr["body"].func.name = "body"
    node.attr["cond"].func.name = "cond"
    call = function.node_def.add()
    call.op = "inner"
    call.attr["branches"].list.func.add().name = "body"
    trace_cache._rename(function, {"outer": "a_0", "body": "a_1", "cond": "a_2", "inner": "a_3"})
    assert function.signature.name == "a_0"
    assert (node.attr["body"].func.name, node.attr["cond"].func.name) == ("a_1", "a_2")
    assert call.op == "a_3" and call.attr["branches"].list.func[0].name == "a_1"


def test_an_xla_octave_is_stored_compiled_with_xla_and_restored(cache, model_file):
    first = Dreamer(model=model_file, layers={"c1": 1.0, "deep:3": 0.5}, xla=True)
    traced = [dream(first), dream(first)]  # short runs in the first frame, whole octaves later
    entries = list(cache.glob(f"*{trace_cache.SUFFIX}"))
    assert len(entries) == first._octave.traces and first._octave.traces >= 2
    assert all(b"_XlaMustCompile" in entry.read_bytes() for entry in entries)
    second = Dreamer(model=model_file, layers={"c1": 1.0, "deep:3": 0.5}, xla=True)
    for expected in traced:
        np.testing.assert_array_equal(dream(second), expected)
    assert (second._octave.traces, second._octave.restored) == (0, first._octave.traces)


def test_a_full_disk_leaves_no_partial_entry_and_the_dream_goes_on(cache, model_file, monkeypatch):
    import errno

    def full(self, data):
        with open(self, "wb") as out:
            out.write(data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    dreamer = Dreamer(model=model_file, layers={"c1": 1.0}, xla=False)
    reference = dream(dreamer)
    assert dreamer._octave.traces == 1 and np.isfinite(reference).all()
    assert cache.is_dir() and list(cache.iterdir()) == []
