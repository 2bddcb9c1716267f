"""The benchmark script runs end to end at a minuscule size: a smoke test, never a timing assertion."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

SCRIPT = ROOT / "scripts" / "bench.py"


def run_bench(tmp_path: Path, *args: str) -> tuple[dict, str]:
    """Run the script (one octave of InceptionV3 to mixed0) with `args`; its report and stdout."""
    out = tmp_path / "bench.json"
    command = [sys.executable, str(SCRIPT), "--octaves", "1", "--layers", "mixed0", *args,
               "--json", str(out), "--workdir", str(tmp_path / "work")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text()), done.stdout


def test_bench_reports_both_sides(tmp_path):
    report, stdout = run_bench(tmp_path, "--size", "80", "--frames", "2", "--steps", "2",
                               "--weights", "none")
    for side in ("baseline", "animator"):
        assert report[side]["steady_seconds_per_frame"] > 0
        assert len(report[side]["runs"][0]["frame_seconds"]) == 2
        assert report[side]["peak_rss_mb"] > 0
    steady = {side: report[side]["steady_seconds_per_frame"] for side in ("baseline", "animator")}
    assert report["ratio"] == steady["baseline"] / steady["animator"]  # the ratio of the same run's figures
    assert report["flops_per_frame"] > 0
    assert 0 < report["animator"]["octave_seconds"] and 0 < report["animator"]["octave_share"]
    assert 0 < report["animator"]["octave_cpu_share"] and report["animator"]["cpu_seconds_per_frame"] > 0
    assert "ratio baseline/animator" in stdout and "octaves' share of a frame" in stdout
    assert (tmp_path / "work" / "baseline0" / "baseline.gif").is_file()
    assert (tmp_path / "work" / "animator0" / "animator.gif").is_file()


def test_bench_times_the_pipeline_alone_into_an_mp4(tmp_path):
    import imageio.v3 as iio

    report, stdout = run_bench(tmp_path, "--size", "96x80", "--frames", "3", "--steps", "0",
                               "--format", "mp4")
    for side in ("baseline", "animator"):
        assert report[side]["end_to_end_fps"] > 0
        video = tmp_path / "work" / f"{side}0" / f"{side}.mp4"
        assert len(list(iio.imiter(video))) == 3
    assert "end-to-end frames/s" in stdout and "-> mp4" in stdout


def test_end_to_end_rate_counts_the_finish():
    bench = load_bench()
    run = {"frame_seconds": [9.0, 0.5, 0.5], "finish_seconds": 1.0}
    assert bench.end_to_end_fps(run) == 1.0  # 2 frames in 0.5 + 0.5 + 1.0 s; the first is left out


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def test_flops_walk_strides_pooling_and_separable_convolutions():
    import keras

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, strides=2)(inputs)  # 17 -> 8: 2*3*3*3*4 * 64 = 13824
    x = keras.layers.MaxPooling2D(2)(x)  # 8 -> 4
    x = keras.layers.SeparableConv2D(5, 3, padding="same")(x)  # 2*9*4*16 + 2*4*5*16 = 1792
    x = keras.layers.Dense(2)(x)  # 2*5*2 * 16 = 320
    model = keras.Model(inputs, x)
    assert load_bench().forward_flops(model, 17, 17) == 13824 + 1792 + 320


def test_bench_video_reports_speed_and_flicker_for_each_variant(tmp_path):
    report, stdout = run_bench(tmp_path, "--video", "--size", "64x48", "--frames", "4",
                               "--steps", "1", "--model", "vgg16-hed", "--layers", "block2_conv2",
                               "--weights", "bundled")
    assert set(report["variants"]) == {"scratch", "flow", "no flow", "every 3"}
    for result in report["variants"].values():
        assert result["seconds_per_frame"] > 0 and result["flicker"] >= 0
    scratch = report["variants"]["scratch"]["flicker"]
    for result in report["variants"].values():  # each variant's flicker against dreaming from scratch
        assert result["flicker_ratio"] == pytest.approx(scratch / max(result["flicker"], 1e-9))
    assert report["variants"]["every 3"]["flicker"] != scratch  # the ratios compare different figures
    assert "less flicker" in stdout
    assert len(list((tmp_path / "work" / "every_3" / "dreamed.mp4.frames").glob("0*.png"))) == 4


# Python imports this at start-up from PYTHONPATH: `import tensorflow` then fails as on a machine
# without it (and `importlib.util.find_spec` finds nothing), in the script and its workers.
NO_TENSORFLOW = "import sys\nsys.modules['tensorflow'] = None\n"


def test_the_gpu_report_runs_with_jax_and_no_tensorflow(tmp_path):
    import keras

    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, activation="relu", name="deep")(x)
    keras.Model(inputs, x).save(tmp_path / "tiny.keras")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(NO_TENSORFLOW)
    env = {**os.environ, "ANIMATOR_JAX_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(SCRIPT), "--gpu-report", "--report-sizes", "64x48",
               "--model", str(tmp_path / "tiny.keras"), "--layers", "deep", "--octaves", "1",
               "--frames", "2", "--steps", "2", "--tile-size", "32", "--workdir", str(tmp_path / "w")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("|")]
    assert table[:2] == ["| figure | value | notes |", "|---|---|---|"]
    labels = [line.split(" | ")[0].lstrip("| ") for line in table[2:]]
    assert labels == ["device", "64×48 end to end (MP4)",
                      "one 64×48 step, float32", "fraction of peak, float32", "one 64×48 step, bfloat16",
                      "tiles of 32: one per call", "tiles of 32: 2 per call", "steps in a fori_loop",
                      "steps unrolled"]
    assert "| device | cpu: cpu |" in done.stdout
    assert (tmp_path / "w" / "e2e-64x48" / "animator.mp4").is_file()


def test_the_precision_table_times_each_model_and_feeds_auto(tmp_path, monkeypatch):
    out = tmp_path / "precision.json"
    root = str(SCRIPT.parents[1])  # this checkout's animator, in the workers too
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(SCRIPT), "--precision", "--models", "mobilenet_v2",
               "--precision-sizes", "48", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    times = report["models"]["mobilenet_v2"]["times"]["48"]
    assert times["float32"] > 0
    assert ("bfloat16" in times) == (report["kind"] != "float32")  # bf16 where it is native only
    assert "| mobilenet_v2 | 48² |" in done.stdout and report["machine"]["cpu"] in done.stdout

    # a bf16 CPU's figures, saved as this machine's, decide auto there
    from animator.engine import backend

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    measured = {"kind": "cpu-bf16", "backend": "tensorflow", "machine": report["machine"],
                "models": {"resnet50": {"times": {"256": {"float32": 80.0, "bfloat16": 50.0}}}}}
    saved = load_bench().save_precision(measured, None)
    assert saved == tmp_path / "cache" / "deepdream-animator" / "precision.json"
    zen4 = backend.device_kind(flags=frozenset({"avx512_bf16"}), accelerator=False)
    assert backend.choose_precision("resnet50", (256, 256), kind=zen4).precision == "bfloat16"


def test_the_summary_gives_the_whole_process_ratio_and_the_first_frame_against_a_steady_one():
    bench = load_bench()
    run = {"frame_seconds": [9.0, 2.0, 2.0, 2.0], "finish_seconds": 0.5, "total_seconds": 20.0,
           "cpu_seconds_per_frame": 2.0, "peak_rss_mb": 1.0}
    peer = {**run, "total_seconds": 30.0}
    report = bench.summarise(bench.Settings(frames=4), {"baseline": [peer],
                                                        "animator": [{**run, "model_seconds": 6.0}]}, None)
    assert report["whole_process_ratio"] == 1.5
    assert report["animator"]["first_frame_after_model_seconds"] == 3.0
    assert report["animator"]["first_to_steady"] == 1.5
    assert "whole process, 4 frames): 1.50x" in bench.format_table(report)


def test_a_warm_comparison_fills_the_caches_once_and_a_cold_one_empties_them_per_run(tmp_path, monkeypatch):
    bench = load_bench()
    calls = []
    run = {"frame_seconds": [9.0, 2.0, 2.0, 2.0], "finish_seconds": 0.5, "total_seconds": 20.0,
           "cpu_seconds_per_frame": 2.0, "peak_rss_mb": 1.0, "model_seconds": 6.0}

    def spawn(side, argv, backend, workdir, **env):
        calls.append((side, argv[-2:], workdir, env))
        return run

    monkeypatch.setattr(bench, "spawn", spawn)
    for start in ("warm", "cold"):
        calls.clear()
        args = bench.build_parser().parse_args(["--repeat", "2", "--start", start])
        report = bench.compare(args, bench.Settings(frames=4), [], tmp_path / start)
        assert report["start"] == start and f"start: {start}" in bench.format_table(report)
        folders = {env["ANIMATOR_TF_CACHE"] for _, _, _, env in calls}
        if start == "warm":  # one untimed one-frame render, then every run shares its caches
            assert calls[0][:2] == ("animator", ["--frames", "1"]) and len(calls) == 5
            assert folders == {str(tmp_path / "warm" / "caches" / "tensorflow")}
        else:
            assert len(calls) == 4 and len(folders) == 4
