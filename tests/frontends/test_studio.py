"""The studio over HTTP: config checks in the CLI's words, the renders folder as the only place
the page can reach, uploads refused from their header, one render at a time, cancel and resume."""

from __future__ import annotations

import base64
import io
import re
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("httpx2")  # Starlette's test client (the `test` extra)

from starlette.testclient import TestClient  # noqa: E402

from animator import cli  # noqa: E402
from animator.studio.app import create_app  # noqa: E402
from animator.studio.work import Studio  # noqa: E402

CHANGE = {"X-Studio": "1"}
TINY = ("input: {noise: {size: [48, 48], seed: 2}}\nframes: 12\nseed: 1\n"
        "dream: {octaves: 1, steps: 2, jitter: 4, layers: {block_3_expand_relu: 1.0}}\n"
        "transforms: [{zoom: {factor: 1.05}}]\n")


@pytest.fixture
def studio(tmp_path):
    return Studio(tmp_path / "renders")


@pytest.fixture
def client(studio):
    return TestClient(create_app(studio), base_url="http://127.0.0.1")


def test_the_test_client_runs_on_httpx2_as_starlette_asks():
    import httpx2  # on plain httpx, Starlette's test client warns that httpx is deprecated

    assert issubclass(TestClient, httpx2.Client)


def test_a_bad_config_gets_the_clis_messages_beside_each_field(client, tmp_path, capsys):
    text = TINY.replace("steps: 2", "steps: -2").replace("factor: 1.05", "factr: 1.05") + "frmaes: 3\n"
    result = client.post("/api/check", json={"yaml": text}, headers=CHANGE).json()
    assert not result["ok"]
    by_path = {p["path"]: p["message"] for p in result["problems"]}
    assert set(by_path) == {"dream.steps", "frmaes", "transforms[0].zoom.factr"}
    (tmp_path / "bad.yaml").write_text(text)
    assert cli.main(["render", str(tmp_path / "bad.yaml")]) == 2
    said = capsys.readouterr().err
    for message in by_path.values():
        assert message in said
    assert result["config"]["dream"]["steps"] == -2  # the form still shows what was typed


def test_yaml_that_does_not_parse_says_where(client):
    response = client.post("/api/check", json={"yaml": "frames: [3\n"}, headers=CHANGE)
    assert response.status_code == 400
    assert "is not valid YAML" in response.json()["message"] and "line 2" in response.json()["message"]


@pytest.mark.parametrize("path", ["../secret.txt", "/etc/passwd", "inputs/../../secret.txt",
                                  ".studio/preview.frames/00000.png", "link/secret.txt"])
def test_nothing_outside_the_renders_folder_is_served(client, studio, tmp_path, path):
    (tmp_path / "secret.txt").write_text("secret")
    (studio.root / "link").symlink_to(tmp_path, target_is_directory=True)
    response = client.get(f"/files/{path}")
    assert response.status_code in (403, 404)
    assert "secret" not in response.text.replace("secret.txt", "")


@pytest.mark.parametrize("field, value", [("input", "../cat.png"), ("input", "/tmp/cat.png"),
                                          ("input", "link/cat.png"), ("input.video", "../clip.mp4"),
                                          ("dream.model", "../m.keras"), ("dream.weights", "/w.h5")])
def test_a_config_cannot_name_files_outside_the_folder(client, studio, tmp_path, field, value):
    (studio.root / "link").symlink_to(tmp_path, target_is_directory=True)
    section, _, key = field.rpartition(".")
    text = TINY.replace("dream: {", f"dream: {{{key}: '{value}', ") if section == "dream" \
        else TINY.replace("{noise: {size: [48, 48], seed: 2}}", f"{{{key}: '{value}'}}" if section else value)
    result = client.post("/api/check", json={"yaml": text}, headers=CHANGE).json()
    assert [p["path"] for p in result["problems"]] == [field]
    response = client.post("/api/render", json={"yaml": text, "name": "x"}, headers=CHANGE)
    assert response.status_code == 400
    assert any(words in response.json()["message"] for words in ("not inside the renders folder",
                                                                   "symbolic link"))
    assert client.get("/api/status").json()["state"] == "idle"


@pytest.mark.parametrize("fmt, name", [("webp", "w/w.webp"), ("mp4", "w/w.mp4"), ("frames", "w/w")])
def test_a_render_is_named_for_its_format(studio, fmt, name):
    config = studio.check(TINY + f"output: {{format: {fmt}}}\n", "w")
    assert config.output_path == studio.root / name and config.output_format == fmt


def test_plugins_come_from_the_command_line_only(client, studio, tmp_path):
    marker = tmp_path / "imported"
    (studio.root / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    for text in (TINY + "plugins: [evil.py]\n", TINY.replace("zoom:", "evil.py:zoom:")):
        result = client.post("/api/check", json={"yaml": text}, headers=CHANGE).json()
        assert result["problems"] and "command line only" in result["problems"][0]["message"]
    assert not marker.exists()


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width`×`height` pixels in under 100 bytes (a few rows of zeros follow)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(64))) \
        + chunk(b"IEND", b"")


def test_an_upload_over_max_pixels_is_refused_from_its_header(client, studio):
    response = client.post("/api/upload", files={"file": ("big.png", png_header(9000, 5000))},
                           data={"max_pixels": "40000000"}, headers=CHANGE)
    assert response.status_code == 413
    assert "9000×5000" in response.json()["message"]
    bomb = client.post("/api/upload", files={"file": ("bomb.png", png_header(100_000, 100_000))},
                       headers=CHANGE)
    assert bomb.status_code == 413
    small = io.BytesIO()
    Image.new("RGB", (20, 20)).save(small, "PNG")
    response = client.post("/api/upload", files={"file": ("../../small.png", small.getvalue())},
                           data={"max_pixels": "100"}, headers=CHANGE)
    assert response.status_code == 413  # 400 pixels over a limit of 100
    assert not (studio.root / "inputs").exists() or not any((studio.root / "inputs").iterdir())
    response = client.post("/api/upload", files={"file": ("../../small.png", small.getvalue())},
                           headers=CHANGE)
    path = response.json()["path"]
    assert re.fullmatch(r"inputs/small-[0-9a-f]{16}\.png", path)  # named for its content
    assert (studio.root / path).read_bytes() == small.getvalue()


def test_changes_need_the_pages_header_and_the_host_must_be_local(client):
    assert client.post("/api/render", json={"yaml": TINY, "name": "x"}).status_code == 403
    assert client.get("/api/form", headers={"Host": "evil.example"}).status_code == 400


def test_off_loopback_every_request_needs_the_token(studio):
    client = TestClient(create_app(studio, token="s3cret", loopback=False), base_url="http://10.0.0.5")
    assert client.get("/api/form").status_code == 403
    assert client.get("/?token=wrong").status_code == 403
    assert client.get("/?token=s3cret").status_code == 200  # sets the cookie the page then uses
    assert client.get("/api/form").status_code == 200


def wait_for(client, states, timeout=120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get("/api/status").json()
        if status["state"] in states:
            return status
        time.sleep(0.1)
    raise AssertionError(f"render still {status['state']} after {timeout} s")


def test_one_render_at_a_time_cancel_keeps_frames_and_resume_finishes(client, studio):
    started = client.post("/api/render", json={"yaml": TINY, "name": "r1"}, headers=CHANGE)
    assert started.status_code == 202
    busy = client.post("/api/preview", json={"yaml": TINY}, headers=CHANGE)
    assert busy.status_code == 409 and "running" in busy.json()["message"]
    while client.get("/api/status").json()["done"] < 2:
        time.sleep(0.05)
    client.post("/api/cancel", headers=CHANGE)
    status = wait_for(client, ("cancelled", "done"))
    assert status["state"] == "cancelled" and 2 <= status["done"] < 12
    assert "press Resume" in status["message"]
    with Image.open(studio.root / "r1" / "r1.gif") as gif:
        assert gif.n_frames == status["done"]
    again = client.post("/api/render", json={"yaml": TINY, "name": "r1"}, headers=CHANGE)
    assert again.status_code == 202
    refused = wait_for(client, ("failed", "done"))
    assert "press Resume to continue it, or Start over" in refused["message"]
    client.post("/api/render", json={"yaml": TINY, "name": "r1", "mode": "resume"}, headers=CHANGE)
    finished = wait_for(client, ("done", "failed"))
    assert finished["state"] == "done" and finished["started_at"] == status["done"]
    [render] = client.get("/api/renders").json()
    assert render["name"] == "r1" and render["frames"] == 12 and render["files"]["gif"]
    assert "path" not in render["yaml"]  # the page edits the config without its output path
    gif = client.get("/api/download/r1.gif")
    with Image.open(io.BytesIO(gif.content)) as image:
        assert image.n_frames == 12
    assert client.get("/api/download/r1.mp4").status_code == 404  # a GET makes nothing
    assert client.post("/api/make/r1.mp4", headers=CHANGE).json() == {"path": "r1/r1.mp4"}
    assert client.get("/api/download/r1.mp4").status_code == 200
    assert (studio.root / "r1" / "r1.mp4").is_file()


def test_previews_and_renders_of_the_same_model_settings_build_the_model_once(client, studio, monkeypatch):
    from animator.engine import dream

    built = []

    class Counted(dream.Dreamer):
        def __init__(self, **arguments):
            built.append(arguments["layers"])
            super().__init__(**arguments)

    monkeypatch.setattr(dream, "Dreamer", Counted)
    first, second = (client.post("/api/preview", json={"yaml": text}, headers=CHANGE)
                     for text in (TINY, TINY.replace("frames: 12", "frames: 3")))
    assert first.status_code == second.status_code == 200
    assert first.content == second.content and len(built) == 1  # the same frame from the one model
    other = TINY.replace("block_3_expand_relu", "block_2_expand_relu")
    assert client.post("/api/preview", json={"yaml": other}, headers=CHANGE).status_code == 200
    client.post("/api/render", json={"yaml": other.replace("frames: 12", "frames: 2"), "name": "k"},
                headers=CHANGE)
    assert wait_for(client, ("done", "failed"))["state"] == "done"
    assert built == [{"block_3_expand_relu": 1.0}, {"block_2_expand_relu": 1.0}]


def test_a_download_is_assembled_with_the_configs_gif_options(client, studio, tmp_path):
    from animator.media import video

    rng = np.random.default_rng(0)
    frames = studio.root / "d" / "d.gif.frames"
    frames.mkdir(parents=True)
    for i in range(3):  # more colours than one palette holds, different in each frame
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(frames / f"{i:05d}.png")
    (studio.root / "d.yaml").write_text(TINY.replace("frames: 12", "frames: 3\nfps: 10") +
                                        "output: {path: d/d.gif, palette: per_frame, dither: true}\n")
    assert client.post("/api/make/d.gif", headers=CHANGE).status_code == 200
    gif = client.get("/api/download/d.gif")
    assert gif.status_code == 200
    asked, plain = tmp_path / "asked.gif", tmp_path / "plain.gif"
    video.assemble(frames, asked, fps=10, palette="per_frame", dither=True)
    video.assemble(frames, plain, fps=10)
    assert gif.content == asked.read_bytes() != plain.read_bytes()


def test_a_webp_render_is_listed_and_downloaded(client, studio):
    frames = studio.root / "w" / "w.webp.frames"
    frames.mkdir(parents=True)
    for index in range(3):
        Image.new("RGB", (32, 32), (120 * index, 60, 90)).save(frames / f"{index:05d}.png")
    (studio.root / "w.yaml").write_text(TINY.replace("frames: 12", "frames: 3") + "output: {format: webp}\n")
    assert "webp" in client.get("/api/form").json()["downloads"]  # the page's download links
    assert client.post("/api/make/w.webp", headers=CHANGE).status_code == 200
    webp = client.get("/api/download/w.webp")
    assert webp.status_code == 200, webp.text
    with Image.open(io.BytesIO(webp.content)) as image:
        assert image.format == "WEBP" and image.n_frames == 3
    [render] = client.get("/api/renders").json()
    assert render["files"] == {"gif": False, "webp": True, "mp4": False, "webm": False}


@pytest.mark.parametrize("made, shown", [(("webp",), "webp"), (("mp4",), "mp4"), (("gif", "mp4"), "gif"),
                                         ((), "gif")])
def test_the_compare_view_shows_the_renders_own_video(client, studio, made, shown):
    from animator.media import video

    frames = studio.root / "c" / "c.gif.frames"
    frames.mkdir(parents=True)
    for index in range(3):
        Image.new("RGB", (32, 32), (120 * index, 60, 90)).save(frames / f"{index:05d}.png")
    (studio.root / "c.yaml").write_text(TINY.replace("frames: 12", "frames: 3"))
    for kind in made:
        video.assemble(frames, studio.root / "c" / f"c.{kind}", fps=8)
    [render] = client.get("/api/renders").json()
    assert render["shown"] == shown
    assert client.post(f"/api/make/c.{shown}", headers=CHANGE).status_code == 200  # the compare view
    assert client.get(f"/api/download/c.{shown}").status_code == 200  # makes it, then loads it
    videos = sorted(path.name for path in (studio.root / "c").iterdir() if path.is_file())
    assert videos == sorted(f"c.{kind}" for kind in made or ("gif",))  # a GIF only when none was made


def test_stopping_the_server_stops_the_render_and_keeps_its_frames(studio):
    with TestClient(create_app(studio), base_url="http://127.0.0.1") as client:
        long = TINY.replace("frames: 12", "frames: 200")
        assert client.post("/api/render", json={"yaml": long, "name": "s"}, headers=CHANGE).status_code == 202
        while client.get("/api/status").json()["done"] < 1:
            time.sleep(0.05)
    assert studio.job.state == "cancelled"  # the server's shutdown waited for the frame loop
    frames = sorted((studio.root / "s" / "s.gif.frames").glob("[0-9]*.png"))
    assert 1 <= len(frames) == studio.job.done < 200


def test_serving_beyond_this_machine_warns_and_needs_a_token(tmp_path, monkeypatch):
    import uvicorn

    from animator import studio as studio_module

    served, said = [], []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **_: served.append((app, host, port)))
    studio_module.serve(tmp_path, host="127.0.0.1", port=8123, announce=lambda *a: said.append(a))
    assert said[-1] == ("http://127.0.0.1:8123/", None) and served[-1][1:] == ("127.0.0.1", 8123)
    studio_module.serve(tmp_path, host="0.0.0.0", port=8123, announce=lambda *a: said.append(a))
    url, warning = said[-1]
    assert url.startswith("http://0.0.0.0:8123/?token=") and "reachable from other machines" in warning
    client = TestClient(served[-1][0], base_url="http://192.168.1.9:8123")
    assert client.get("/api/form").status_code == 403
    assert client.get("/?" + url.partition("?")[2]).status_code == 200


def test_every_front_end_words_every_remedy():
    from animator.settings.errors import PYTHON_ADVICE
    from animator.studio.work import STUDIO_ADVICE

    assert set(STUDIO_ADVICE) == set(PYTHON_ADVICE) == set(cli.CLI_ADVICE)


def test_the_form_is_built_from_the_declarations(client):
    import transforms
    from animator.settings import params

    form = client.get("/api/form").json()
    fields = {field["path"]: field for field in form["fields"]}
    declared = [("" if section == "animation" else f"{section}.") + p.name
                for section, table in params.parameters().items() for p in table]
    assert set(fields) == {"size", "audio.path"} | set(declared) - {"output.path"}
    steps = params.DREAM["steps"]
    assert (fields["dream.steps"]["kind"], fields["dream.steps"]["default"], fields["dream.steps"]["min"]) \
        == ("schedule", steps.default, 0)
    assert steps.help in fields["dream.steps"]["help"]
    assert fields["output.palette"]["choices"] == list(params.OUTPUT["palette"].choices)
    zoom = next(t for t in form["transforms"] if t["name"] == "zoom")
    assert [(p["name"], p["default"]) for p in zoom["params"]] == [
        (p.name, list(p.default) if isinstance(p.default, tuple) else p.default)
        for p in transforms.get("zoom").params]


def test_the_size_fields_help_is_its_declaration(client):
    from animator.config import Animation

    declared = Animation.model_fields["size"].description
    fields = {field["path"]: field for field in client.get("/api/form").json()["fields"]}
    assert declared and fields["size"]["help"] == declared


def test_the_pages_noise_input_is_the_declared_one(client, studio):
    from animator.config import Noise

    noise = client.get("/api/form").json()["noise"]
    assert noise == {"noise": Noise().model_dump(mode="json")}
    assert studio.check(client.post("/api/dump", json={"config": {"input": noise}}, headers=CHANGE)
                        .json()["yaml"]).animation.input.noise == Noise()


def _tone_track(folder) -> str:
    from helpers import write_wav

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(44_100) / 44_100
    write_wav(folder / "tone.wav", 0.5 * np.sin(2 * np.pi * 60 * t))
    return "inputs/tone.wav"


def test_a_config_with_audio_gets_its_features_plot_and_its_sound(client, studio):
    pytest.importorskip("librosa")
    track = _tone_track(studio.root / "inputs")
    text = TINY.replace("frames: 12\n", "fps: 10\n") + f"audio: {{path: {track}, end: 0.5}}\n"
    sound = client.post("/api/soundtrack", json={"yaml": text}, headers=CHANGE).json()["audio"]
    assert sound["url"] == f"/files/{track}" and sound["start"] == 0 and sound["fps"] == 10
    png = base64.b64decode(sound["plot"].removeprefix("data:image/png;base64,"))
    with Image.open(io.BytesIO(png)) as plot:
        assert plot.format == "PNG" and plot.width == 900
    played = client.get(sound["url"])
    assert played.status_code == 200 and played.content[:4] == b"RIFF"
    assert client.post("/api/soundtrack", json={"yaml": TINY}, headers=CHANGE).json() == {"audio": None}


@pytest.mark.parametrize("kind, codec", [("mp4", "aac"), ("webm", "opus"), ("gif", None)])
def test_a_video_made_on_the_page_carries_the_soundtrack_where_its_kind_can(client, studio, kind, codec):
    import subprocess

    import imageio_ffmpeg
    from helpers import audio_seconds

    pytest.importorskip("librosa")
    track = _tone_track(studio.root / "inputs")
    frames = studio.root / "s" / "s.gif.frames"
    frames.mkdir(parents=True)
    for index in range(5):
        Image.new("RGB", (32, 32), (50 * index, 60, 90)).save(frames / f"{index:05d}.png")
    (studio.root / "s.yaml").write_text(TINY.replace("frames: 12\n", "fps: 10\nframes: 5\n")
                                        + f"audio: {{path: {track}}}\n")
    assert client.post(f"/api/make/s.{kind}", headers=CHANGE).status_code == 200
    made = studio.root / "s" / f"s.{kind}"
    said = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(made)],
                          capture_output=True, text=True).stderr
    if codec is None:
        assert "Audio:" not in said
    else:
        assert f"Audio: {codec}" in said and audio_seconds(made) == pytest.approx(0.5, abs=0.1)


def test_a_soundtrack_outside_the_folder_is_refused(client, tmp_path):
    outside = _tone_track(tmp_path / "elsewhere")
    text = TINY + f"audio: {tmp_path / 'elsewhere' / outside.rpartition('/')[2]}\n"
    result = client.post("/api/check", json={"yaml": text}, headers=CHANGE).json()
    assert not result["ok"] and [p["path"] for p in result["problems"]] == ["audio"]


def test_the_form_offers_the_soundtrack_and_its_declared_settings(client):
    fields = {f["path"]: f for f in client.get("/api/form").json()["fields"]}
    assert fields["audio.path"]["kind"] == "text"
    assert fields["audio.release"]["default"] == 4.0 and fields["audio.beat_decay"]["min"] == 1
