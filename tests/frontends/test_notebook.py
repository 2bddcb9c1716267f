"""docs/notebook.ipynb runs top to bottom in a real Jupyter kernel, with a live preview and images."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from helpers import ROOT
from PIL import Image

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = ROOT / "docs" / "notebook.ipynb"
FRAMES = 3


class RecordingClient(nbclient.NotebookClient):
    """Keeps every message type a cell's execution produced, to see the preview's in-place updates."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.updates: dict[int, list[dict]] = {}

    def process_message(self, msg, cell, cell_index):
        if msg["msg_type"] == "update_display_data":
            self.updates.setdefault(cell_index, []).append(msg["content"]["data"])
        return super().process_message(msg, cell, cell_index)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    out = tmp_path_factory.mktemp("notebook")
    with pytest.MonkeyPatch.context() as env:  # the kernel inherits this process's environment
        for name, value in {"NOTEBOOK_SIZE": 48, "NOTEBOOK_FRAMES": FRAMES, "NOTEBOOK_STEPS": 2,
                            "NOTEBOOK_OCTAVES": 1, "NOTEBOOK_OUT": out}.items():
            env.setenv(name, str(value))
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        client = RecordingClient(notebook, timeout=300, kernel_name="python3",
                                 resources={"metadata": {"path": str(NOTEBOOK.parent)}})
        client.execute()
    return notebook, client, out


def cell_with(notebook, text: str) -> int:
    return next(i for i, cell in enumerate(notebook.cells) if text in cell.source)


def gif_frames(data: str) -> int:
    with Image.open(io.BytesIO(base64.b64decode(data))) as gif:
        return gif.n_frames


def test_the_still_dream_shows_an_image(executed):
    notebook, _, _ = executed
    outputs = notebook.cells[cell_with(notebook, "(still,) =")].outputs
    png = next(o for o in outputs if "image/png" in o.get("data", {}))
    with Image.open(io.BytesIO(base64.b64decode(png["data"]["image/png"]))) as image:
        assert image.size == (48, 32)


@pytest.mark.parametrize("name", ["zoom.gif", "swirl.gif", "reversed.gif"])
def test_each_render_previews_its_frames_then_shows_its_gif(executed, name):
    notebook, client, out = executed
    index = cell_with(notebook, f'"{name}"')
    gifs = [o["data"]["image/gif"] for o in notebook.cells[index].outputs if "image/gif" in o.get("data", {})]
    assert [gif_frames(data) for data in gifs] == [FRAMES]
    previews = [u["text/html"] for u in client.updates[index] if "text/html" in u]
    assert previews and "data:image/png;base64," in previews[-1]
    assert f"frame {FRAMES}/{FRAMES}" in previews[-1]
    assert (out / name).is_file()


def test_the_reversed_gif_plays_its_frames_backwards(executed):
    _, _, out = executed
    pngs = [np.asarray(Image.open(p), np.float32)
            for p in sorted((out / "reversed.gif.frames").glob("[0-9]*.png"))]
    with Image.open(out / "reversed.gif") as gif:
        assert gif.info["loop"] == 0
        order = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frame = np.asarray(gif.convert("RGB"), np.float32)
            order.append(int(np.argmin([np.abs(frame - png).mean() for png in pngs])))
    assert order == list(range(FRAMES))[::-1]
