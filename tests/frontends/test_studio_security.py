"""The studio as a hostile page would use it: every setting that names a file passes the one
rule (`config.map_files`, then `work.inside`), and its refusal says nothing about what exists
outside; no GET loads plugin code or writes to disk; no request gets a 500 or a traceback;
uploads never replace each other; and random requests read nothing outside the folder."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import sys
import threading
import typing
import zlib
from pathlib import Path
from types import UnionType
from urllib.parse import quote

import pytest
from PIL import Image, PngImagePlugin

pytest.importorskip("starlette")
pytest.importorskip("httpx2")

from pydantic import BaseModel  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from animator import config as config_module  # noqa: E402
from animator.config import objective  # noqa: E402
from animator.settings import params  # noqa: E402
from animator.settings.errors import ConfigError  # noqa: E402
from animator.studio.app import create_app  # noqa: E402
from animator.studio.work import MODES, Studio  # noqa: E402

CHANGE = {"X-Studio": "1"}
TINY = ("input: {noise: {size: [48, 48], seed: 2}}\nframes: 3\nseed: 1\n"
        "dream: {octaves: 1, steps: 1, jitter: 4, layers: {block3_conv3: 1.0}}\n"
        "transforms: [{zoom: {factor: 1.05}}]\n")
BASE = {"input": {"noise": {"size": [48, 48], "seed": 2}}, "frames": 3,
        "dream": {"octaves": 1, "steps": 1, "layers": {"block3_conv3": 1.0}}}
RULE = ("not inside the renders folder", "symbolic link")


@pytest.fixture
def folders(tmp_path):
    """The studio's folder, and beside it (outside) a real image and a symlink to it from inside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(outside / "secret.png")
    studio = Studio(tmp_path / "renders")
    (studio.root / "link").symlink_to(outside, target_is_directory=True)
    return studio, outside


@pytest.fixture
def client(folders):
    return TestClient(create_app(folders[0]), base_url="http://127.0.0.1")


def one_line(response) -> str:
    """The error's message, checked to be one line of JSON (no traceback, no HTML)."""
    message = response.json()["message"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


# --- 1. one rule for every setting that names a file ------------------------------------------


def leaves(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every setting's key path, read from the config models (`[0]` for an item of a list)."""
    found = []
    for name, field in model.model_fields.items():
        found += _leaves(field.annotation, prefix + name)
    return list(dict.fromkeys(found))


def _leaves(annotation, path: str) -> list[str]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _leaves(args[0], path)
    if origin in (typing.Union, UnionType):
        return [leaf for arg in args for leaf in _leaves(arg, path)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return leaves(annotation, path + ".")
    if origin is list:
        return _leaves(args[0] if args else typing.Any, path + "[0]")
    return [path]


def objective_leaves() -> list[str]:
    """The keys an `objective:` item takes (`objective.ITEM_KEYS` and each one's options)."""
    return [f"dream.objective[0].{key}" for key in objective.ITEM_KEYS] + [
        f"dream.objective[0].{kind}+{option}" for kind, options in objective.ITEM_OPTIONS.items()
        for option in options]


def put(data: dict, leaf: str, value) -> dict:
    """A copy of `data` with the setting at `leaf` set to `value` (sections made as needed;
    `kind+option` sets an objective item's option beside a plain value of its kind)."""
    data = json.loads(json.dumps(data))
    if "+" in leaf:
        kind, option = leaf.rpartition(".")[2].split("+")
        plain = {"guide": "inputs/g.png"}.get(kind, "block3_conv3")
        data["dream"]["objective"] = [{kind: plain, option: value}]
        return data
    parts = re.findall(r"[^.\[\]]+|\[0\]", leaf)
    node = data
    for part, following in zip(parts, parts[1:] + [None]):
        key = 0 if part == "[0]" else part
        if following is None:
            if isinstance(node, list):
                node[:] = [value]
            else:
                node[key] = value
            break
        if isinstance(node, list):
            child = node[0] if node else None
        else:
            child = node.get(key)
        fresh = [] if following == "[0]" else {}
        if type(child) is not type(fresh):
            child = fresh
            if isinstance(node, list):
                node[:] = [child]
            else:
                node[key] = child
        node = child
    return data


def declaration(leaf: str) -> params.Parameter | None:
    """The declared parameter of a setting (an objective item's key takes the dream setting's
    of that name: `guide`, `layers`), or None for the structured ones (input, plugins, ...)."""
    section, _, name = leaf.rpartition(".")
    name = name.rpartition("+")[2].partition("[")[0]
    if section.startswith("dream.objective"):
        return params.DREAM.get(name)
    table = params.SECTIONS.get(section or "animation")
    return table.get(name) if table else None


def refusals(studio: Studio, data: dict) -> dict[str, str]:
    try:
        studio._checked(data, "probe")
    except ConfigError as error:
        return dict(error.problems or [("", str(error))])
    return {}


def test_every_setting_that_names_a_file_goes_through_the_one_rule(folders):
    """Each setting the config models hold (and each key of an objective item) is given paths
    outside the folder in several shapes: the studio refuses each one at that setting, by the
    file rule wherever the value names a file; or the setting is declared as naming no file."""
    studio, outside = folders
    assert refusals(studio, BASE) == {}
    found = leaves(config_module.Animation) + objective_leaves()
    assert {"input", "input.video", "plugins[0]", "transforms[0]", "dream.model", "dream.weights",
            "dream.guide", "output.path", "dream.objective[0].guide"} <= set(found)
    probes = ["../outside/secret.png", str(outside / "secret.png"), "link/secret.png",
              "inputs/../../outside/secret.png", "../m.keras", "/tmp/w.h5", "../evil.py:zoom"]
    unchecked = []
    for leaf in found:
        declared = declaration(leaf)
        key = "dream.objective[0]." + leaf.partition("+")[2] if "+" in leaf else leaf
        for probe in probes:
            data = put(BASE, leaf, probe)
            problems = refusals(studio, data)
            related = {path: line for path, line in problems.items()
                       if path == key or key.startswith(path) or path.startswith(key)}
            if declared is not None and declared.file and config_module.names_file(key, probe):
                assert key in config_module.files_named(data), (leaf, probe)  # the one rule sees it
                assert related, (leaf, probe)
                if key != "output.path":  # refused whatever it names
                    assert any(word in line for line in related.values() for word in RULE), (leaf, related)
            elif not related and (declared is None or declared.file is None):
                unchecked.append((leaf, probe))
    assert not unchecked, ("settings that accept a path unchecked: declare them in animator.settings.params "
                           "(file=True: map_files checks them; file=False: not a file)", unchecked)


def test_every_free_text_setting_declares_whether_it_names_a_file():
    free = [(section, p.name) for section, table in params.SECTIONS.items() for p in table.values()
            if not p.scheduled and not p.choices and _takes_text(p.annotation)]
    assert ("dream", "guide") in free and ("dream", "layers") in free
    assert [item for item in free if params.SECTIONS[item[0]][item[1]].file is None] == []


def _takes_text(annotation) -> bool:
    if annotation is str:
        return True
    return any(_takes_text(arg) for arg in typing.get_args(annotation))


GUIDES = {"dream.guide": lambda path: {"guide": path},
          "dream.objective[0].guide": lambda path: {"objective": [{"guide": path, "weight": 0.5}]},
          "dream.objective[1].guide": lambda path: {"objective": [{"tv": 0.1},
                                                                  {"guide": path, "layers": "block3_conv3"}]}}


@pytest.mark.parametrize("key", list(GUIDES))
@pytest.mark.parametrize("shape", ["absolute", "dotdot", "symlink"])
def test_a_guide_outside_the_folder_is_refused_alike_whether_it_exists(client, folders, key, shape):
    studio, outside = folders
    (outside / "shadow").write_text("root:x:0:0\n")  # a file that exists, as /etc/shadow does
    paths = {"absolute": (str(outside / "shadow"), str(outside / "missing")),
             "dotdot": ("../outside/shadow", "../outside/missing"),
             "symlink": ("link/shadow", "link/missing")}[shape]
    said = []
    for path in paths:
        data = {**BASE, "dream": {**BASE["dream"], **GUIDES[key](path)}}
        text = json.dumps(data)
        checked = client.post("/api/check", json={"yaml": text}, headers=CHANGE).json()
        assert [p["path"] for p in checked["problems"]] == [key]
        preview = client.post("/api/preview", json={"yaml": text}, headers=CHANGE)
        assert preview.status_code == 400  # refused before any dreaming
        said.append(checked["problems"][0]["message"].replace(path, "PATH"))
        said.append(one_line(preview).replace(path, "PATH"))
    assert said[:2] == said[2:]  # no oracle: the same words for a file that exists and one that does not
    assert any(word in said[0] for word in RULE)


def test_files_named_lists_guides_and_absolute_files_makes_them_absolute(tmp_path):
    data = {**BASE, "dream": {"guide": "g.png", "model": "vgg16-hed", "weights": "imagenet",
                              "objective": [{"guide": "h.png"}, {"tv": 0.1}]}}
    assert config_module.files_named(data) == {"dream.guide": "g.png", "dream.objective[0].guide": "h.png"}
    moved = config_module.absolute_files(data, tmp_path)
    assert moved["dream"]["guide"] == str(tmp_path / "g.png")
    assert moved["dream"]["objective"] == [{"guide": str(tmp_path / "h.png")}, {"tv": 0.1}]
    assert (moved["dream"]["model"], moved["dream"]["weights"]) == ("vgg16-hed", "imagenet")  # keywords


# --- 2. a GET loads no plugin and writes nothing ------------------------------------------------


def tree(folder: Path) -> dict:
    """Every entry under `folder` with its size and modification time (links not followed)."""
    return {str(path.relative_to(folder)): (path.lstat().st_size, path.lstat().st_mtime_ns)
            for path in sorted(folder.rglob("*"))}


def test_no_get_loads_plugin_code_or_changes_the_disk_whatever_the_referer(client, folders, tmp_path):
    studio, outside = folders
    marker = tmp_path / "imported"
    (studio.root / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                         "def zoom(frame, ctx):\n    return frame\n")
    frames = studio.root / "p" / "p.gif.frames"
    frames.mkdir(parents=True)
    for index in range(2):
        Image.new("RGB", (16, 16), (90 * index, 40, 40)).save(frames / f"{index:05d}.png")
    for name, extra in (("p", "plugins: [evil.py]\n"), ("q", "")):
        text = TINY.replace("zoom:", "evil.py:zoom:") if name == "q" else TINY + extra
        (studio.root / f"{name}.yaml").write_text(text)
    (studio.root / "q").mkdir()
    (studio.root / "q" / "q.gif.frames").symlink_to(frames, target_is_directory=True)
    before, outside_before = tree(studio.root), tree(outside)
    referers = [{}, {"Referer": "https://evil.example/page"}, {"Referer": "http://127.0.0.1/"}]
    gets = ["/", "/api/form", "/api/status", "/api/renders", "/api/inputs", "/files/p/p.gif.frames/00000.png",
            *(f"/api/download/{name}.{kind}" for name in "pq" for kind in ("gif", "webp", "mp4", "yaml"))]
    for headers in referers:
        for path in gets:
            response = client.get(path, headers=headers)
            assert response.status_code in (200, 404), (path, response.text)
    assert not marker.exists()
    assert tree(studio.root) == before and tree(outside) == outside_before
    for name in "pq":  # making the video is a POST, and it too loads no plugin
        made = client.post(f"/api/make/{name}.gif", headers=CHANGE)
        assert made.status_code == 400 and "command line only" in one_line(made)
    assert not marker.exists()
    refused = client.post("/api/make/p.gif", headers={"Referer": "https://evil.example/"})
    assert refused.status_code == 403  # another site's page cannot send the header
    assert tree(studio.root) == before


# --- 3. a 4xx with one line, never a 500 --------------------------------------------------------


def text_bomb_png() -> bytes:
    """A small PNG whose compressed text chunk inflates past Pillow's limit (MAX_TEXT_CHUNK)."""
    data = io.BytesIO()
    Image.new("RGB", (8, 8)).save(data, "PNG")
    png = data.getvalue()
    body = b"comment\0\0" + zlib.compress(b" " * (PngImagePlugin.MAX_TEXT_CHUNK + 1024), 9)
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body + struct.pack(">I", zlib.crc32(b"zTXt" + body))
    return png[:33] + chunk + png[33:]  # after the IHDR chunk


def deep_json(depth: int) -> bytes:
    return b'{"yaml": ' + b"[" * depth + b"]" * depth + b"}"


BAD_REQUESTS = {
    "text chunk upload": ("post", "/api/upload", {"files": {"file": ("t.png", text_bomb_png())}}),
    "long upload name": ("post", "/api/upload", {"files": {"file": ("a" * 300 + ".png", b"x")}}),
    "huge upload name": ("post", "/api/upload", {"files": {"file": ("a" * 50_000 + ".png", b"x")}}),
    "long file name": ("get", "/files/" + "a" * 300, {}),
    "long path": ("get", "/files/" + "/".join(["abcdefgh"] * 600), {}),
    "nul in path": ("get", "/files/a%00b.png", {}),
    "long download": ("get", "/api/download/" + "a" * 5000 + ".gif", {}),
    "yaml a number": ("post", "/api/check", {"json": {"yaml": 5}}),
    "name a list": ("post", "/api/render", {"json": {"yaml": TINY, "name": ["x"]}}),
    "mode a mapping": ("post", "/api/render", {"json": {"yaml": TINY, "name": "x", "mode": {}}}),
    "config a number": ("post", "/api/dump", {"json": {"config": 5}}),
    "nested 10000 deep": ("post", "/api/check", {"content": deep_json(10_000)}),
    "dump nested 900 deep": ("post", "/api/dump", {"content": b'{"config": {"a": ' + b"[" * 900
                                                   + b"]" * 900 + b"}}"}),
    "not UTF-8": ("post", "/api/check", {"content": b'{"yaml": "\xff"}'}),
    "since not a number": ("get", "/api/status?since=abc", {}),
    "since huge": ("get", "/api/status?since=" + "9" * 5000, {}),
    "live frame huge": ("get", "/api/live/" + "9" * 5000 + ".png", {}),
    "input name too long": ("post", "/api/preview", {"json": {"yaml": "input: " + "a" * 300 + ".png\n"}}),
    "input a text bomb": ("post", "/api/preview", {"json": {"yaml": "input: inputs/bomb.png\n"}}),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_each_bad_request_is_a_4xx_with_one_line(client, folders, case, capsys):
    studio, _ = folders
    (studio.root / "inputs").mkdir(exist_ok=True)
    (studio.root / "inputs" / "bomb.png").write_bytes(text_bomb_png())
    method, path, options = BAD_REQUESTS[case]
    headers = CHANGE if method == "post" else {}
    response = getattr(client, method)(path, headers=headers, **options)
    assert 400 <= response.status_code < 500, response.text
    one_line(response)
    assert "Traceback" not in capsys.readouterr().err


def test_an_error_nobody_foresaw_in_the_pages_config_is_a_422_with_one_line(client, folders, monkeypatch):
    studio, _ = folders

    def broken(**arguments):
        raise ZeroDivisionError("float division by zero")

    studio.dreamers = broken  # as a value the checks let through would break the dream
    preview = client.post("/api/preview", json={"yaml": TINY}, headers=CHANGE)
    assert preview.status_code == 422
    assert "the preview failed on an internal error (ZeroDivisionError" in one_line(preview)
    monkeypatch.setattr(config_module, "from_mapping", lambda *a, **k: {}["no such key"])
    check = client.post("/api/check", json={"yaml": TINY}, headers=CHANGE)
    assert check.status_code == 422 and "KeyError" in one_line(check)


def test_an_error_of_the_studio_itself_is_one_line_here_and_in_the_terminal(client, folders, monkeypatch,
                                                                           caplog):
    studio, _ = folders
    monkeypatch.setattr(studio, "gallery", lambda: [][1])
    response = client.get("/api/renders")
    assert response.status_code == 500 and "IndexError" in one_line(response)
    [record] = [r for r in caplog.records if r.name == "animator.studio"]
    assert "IndexError" in record.getMessage() and "\n" not in record.getMessage()
    assert record.exc_info is None  # no traceback


def test_values_yaml_reads_that_json_cannot_carry_are_answered(client):
    text = TINY.replace("frames: 3", "frames: .nan\nfps: .inf").replace("seed: 1", "seed: 2001-12-14")
    response = client.post("/api/check", json={"yaml": text}, headers=CHANGE)
    assert response.status_code == 200
    result = response.json()
    assert not result["ok"]
    assert result["config"]["frames"] == "nan" and result["config"]["seed"] == "2001-12-14"
    assert {p["path"] for p in result["problems"]} >= {"frames", "fps", "seed"}


@pytest.mark.timeout(60)
def test_the_gallery_skips_what_it_cannot_read(client, folders):
    studio, _ = folders
    (studio.root / "good.yaml").write_text(TINY)
    (studio.root / "dangling.yaml").symlink_to(studio.root / "nowhere.yaml")
    (studio.root / "folder.yaml").mkdir()
    os.mkfifo(studio.root / "pipe.yaml")  # reading it would wait for a writer forever
    (studio.root / "outlink.yaml").symlink_to(studio.root / "good.yaml")
    answer = {}
    worker = threading.Thread(target=lambda: answer.update(response=client.get("/api/renders")))
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "the gallery hung on a pipe"
    assert answer["response"].status_code == 200
    assert [render["name"] for render in answer["response"].json()] == ["good"]
    assert client.get("/api/download/pipe.yaml").status_code == 404
    assert client.post("/api/make/pipe.gif", headers=CHANGE).status_code == 404


# --- 4. uploads never replace each other --------------------------------------------------------


def png(colour) -> bytes:
    data = io.BytesIO()
    Image.new("RGB", (24, 24), colour).save(data, "PNG")
    return data.getvalue()


def upload(client, name: str, data: bytes):
    return client.post("/api/upload", files={"file": (name, data)}, headers=CHANGE)


def test_an_upload_of_the_same_name_keeps_the_first_and_its_render_resumable(client, folders):
    studio, _ = folders
    first = upload(client, "cat.png", png((10, 20, 30))).json()["path"]
    text = TINY.replace("{noise: {size: [48, 48], seed: 2}}", first)
    fingerprint = studio.check(text, "cat").fingerprint()  # what a resume compares
    second = upload(client, "cat.png", png((200, 20, 30))).json()["path"]
    assert second != first and second.startswith("inputs/cat-")
    assert (studio.root / first).read_bytes() == png((10, 20, 30))
    assert (studio.root / second).read_bytes() == png((200, 20, 30))
    assert studio.check(text, "cat").fingerprint() == fingerprint  # the render made from it resumes
    again = upload(client, "cat.png", png((10, 20, 30)))
    assert again.json()["path"] == first  # the same image: the same name, nothing written
    assert sorted(path.name for path in (studio.root / "inputs").iterdir()) == sorted(
        Path(p).name for p in (first, second))


def test_an_upload_never_replaces_a_file_put_under_its_name(client, folders):
    studio, _ = folders
    name = upload(client, "dog.png", png((1, 2, 3))).json()["path"]
    (studio.root / name).write_bytes(png((9, 9, 9)))  # someone replaced it by hand
    again = upload(client, "dog.png", png((1, 2, 3)))
    assert again.status_code == 409 and "move it away" in one_line(again)
    assert (studio.root / name).read_bytes() == png((9, 9, 9))


# --- the property: random requests find no 500 and read nothing outside the folder ------------

READS: list[str] = []
RECORDING = threading.Event()


def _audit(event: str, args) -> None:
    if RECORDING.is_set() and event in ("open", "os.listdir", "os.scandir") and args \
            and isinstance(args[0], (str, bytes, os.PathLike)):
        READS.append(os.fsdecode(args[0]))


def allowed_roots(root: Path) -> list[str]:
    """Where a request may open files: the studio's folder, and Python's own (lazy imports,
    the page's files in the package)."""
    import animator
    import transforms

    places = {root, Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
              Path(animator.__file__).parent, Path(transforms.__file__).parent,
              *(Path(entry) for entry in sys.path if entry)}
    return [os.path.realpath(place) for place in places]


def is_allowed(path: str, roots: list[str]) -> bool:
    import mimetypes

    real = os.path.realpath(path)
    if path in mimetypes.knownfiles:  # the system's table of file types, read once
        return True
    return real.startswith("/dev/") or real.startswith("/proc/") or any(
        real == root or real.startswith(root.rstrip("/") + "/") for root in roots)


class ReadingDreamer:
    """In place of building the model: read the files a Dreamer is given as the real one does
    (model, weights, guide images), then stop before the slow part."""

    def __init__(self) -> None:
        self.built = 0

    def __call__(self, **arguments):
        from animator.settings.errors import UserError

        self.built += 1
        items = arguments.get("objective")
        items = items if isinstance(items, list) else []
        named = [arguments.get("model"), arguments.get("weights"), arguments.get("guide"),
                 *(item.get("guide") for item in items if isinstance(item, dict))]
        for path in named:
            if isinstance(path, str) and os.path.isfile(path):
                with open(path, "rb") as stream:
                    stream.read(16)
        raise UserError("stopped before dreaming")


def hostile_requests(secret: Path):
    from hypothesis import strategies as st

    outside_names = ["../outside/secret.png", "/tmp", "link/secret.png", "inputs/../../outside/secret.png",
                     "%2e%2e/outside/secret.png", "..%2foutside", "a\x00b", "é" * 130, "a" * 300, "r.yaml",
                     "r/r.gif.frames/00000.png", ".studio/x", "link", "inputs/cat.png", "/etc/passwd"]
    segment = st.one_of(st.sampled_from(outside_names), st.text(max_size=40))
    file_setting = st.sampled_from([
        "input: {0}", "input: {{video: '{0}'}}", "dream: {{octaves: 1, guide: '{0}'}}",
        "dream: {{octaves: 1, objective: [{{guide: '{0}'}}]}}", "dream: {{octaves: 1, model: '{0}.keras'}}",
        "dream: {{octaves: 1, weights: '{0}'}}", "plugins: ['{0}']", "transforms: ['{0}:zoom']",
        "output: {{path: '{0}'}}"])
    config = st.one_of(
        st.builds(lambda line, name: TINY + line.format(name.replace("'", "")) + "\n", file_setting,
                  st.sampled_from(outside_names + [str(secret)])),
        st.just(TINY), st.text(max_size=200))
    any_character = st.characters(exclude_categories=())  # lone surrogates too, as JSON may carry
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
                        st.text(any_character, max_size=8))
    values = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
    body = st.one_of(
        st.fixed_dictionaries({"yaml": st.one_of(config, values)},
                              optional={"name": st.one_of(st.sampled_from(["r", "x", "../r"]), values),
                                        "mode": st.one_of(st.sampled_from(list(MODES)), values),
                                        "config": values}),
        values, st.binary(max_size=64))
    path = st.one_of(
        st.builds(lambda route, a: route.format(quote(a, safe="/%?=&")), st.sampled_from(
            ["/files/{0}", "/api/download/{0}.gif", "/api/download/r.{0}", "/api/make/{0}.gif",
             "/api/make/r.{0}", "/api/live/{0}.png", "/api/status?since={0}", "/page/{0}", "/{0}"]), segment),
        st.sampled_from(["/", "/api/form", "/api/check", "/api/dump", "/api/preview", "/api/render",
                         "/api/cancel", "/api/status", "/api/renders", "/api/upload", "/api/inputs",
                         "/api/download/r.gif", "/api/download/r.yaml", "/api/make/r.webp"]))
    header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
    headers = st.dictionaries(st.sampled_from(["Referer", "Content-Type", "Cookie", "Origin", "Range",
                                               "Content-Length", "X-Studio"]), header_text, max_size=3)
    # as the page asks, with a config that names a file outside in one of its settings
    posts = st.sampled_from(["/api/check", "/api/preview", "/api/render", "/api/make/r.gif"])
    outside_files = st.sampled_from(["../outside/secret.png", "link/secret.png", str(secret), "/etc/passwd",
                                     "inputs/../../outside/secret.png", *["inputs/cat.png"] * 3])
    naming = st.builds(lambda line, name: TINY + line.format(name) + "\n", file_setting, outside_files)
    page_body = st.fixed_dictionaries({"yaml": naming, "name": st.sampled_from(["r", "x"]),
                                       "mode": st.sampled_from(["new", "force"])})
    page_like = st.tuples(st.just("POST"), posts, page_body, st.just({}), st.just(True))
    return st.one_of(page_like, st.tuples(st.sampled_from(["GET", "POST", "PUT", "HEAD"]), path, body,
                                          headers, st.booleans()))


GUIDED = "dream: {octaves: 1, guide: inputs/cat.png}\n"  # a guide inside: the preview reaches the model


def test_random_requests_get_no_500_and_read_nothing_outside(tmp_path):
    from hypothesis import HealthCheck, example, given, settings

    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (16, 16)).save(outside / "secret.png")
    studio = Studio(tmp_path / "renders")
    (studio.root / "link").symlink_to(outside, target_is_directory=True)
    frames = studio.root / "r" / "r.gif.frames"
    frames.mkdir(parents=True)
    for index in range(2):
        Image.new("RGB", (16, 16), (90 * index, 40, 40)).save(frames / f"{index:05d}.png")
    (studio.root / "r.yaml").write_text(TINY)
    (studio.root / "inputs").mkdir()
    Image.new("RGB", (64, 64)).save(studio.root / "inputs" / "cat.png")
    studio.dreamers = ReadingDreamer()  # previews and renders get as far as the model
    client = TestClient(create_app(studio), base_url="http://127.0.0.1")
    roots = allowed_roots(studio.root)
    sys.addaudithook(_audit)

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hostile_requests(outside / "secret.png"))
    @example(("POST", "/api/preview", {"yaml": TINY + GUIDED}, {}, True))
    def check(request):
        method, path, body, headers, studio_header = request
        headers = {**headers, **(CHANGE if studio_header else {})}
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        if method == "POST" and path == "/api/upload" and not isinstance(body, bytes):
            options = {"files": {"file": ("x.png", content)}}
            headers.pop("Content-Type", None)
            headers.pop("Content-Length", None)
        else:
            options = {"content": content}
        READS.clear()
        RECORDING.set()
        try:
            response = client.request(method, path, headers=headers, **options)
            if studio.thread is not None:
                studio.thread.join(60)  # a render reads its files on its own thread
        finally:
            RECORDING.clear()
        assert response.status_code < 500, (method, path, body, response.text)
        outside_reads = [read for read in READS if not is_allowed(read, roots)]
        assert not outside_reads, (method, path, body, outside_reads)

    check()
    assert studio.dreamers.built  # some requests got as far as the dream
