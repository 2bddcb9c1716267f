"""Plugins: from a file, a module name or an entry point; clear errors when one is broken."""

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT

import transforms
from animator.settings.errors import ConfigError, PluginError
from transforms import Context, build_chain, load_plugin, load_plugins

BROKEN = """
import numpy as np
from transforms import register


@register("explode", numpy=True)
def explode(frame, ctx):
    if ctx.index >= 7:
        raise RuntimeError("boom")
    return frame


@register("shrink", numpy=True)
def shrink(frame, ctx):
    return frame[:-1]


@register("poison", numpy=True)
def poison(frame, ctx):
    frame = frame.copy()
    frame[0, 0, 0] = np.nan
    return frame


@register("integers", numpy=True)
def integers(frame, ctx):
    return frame.astype(np.int32)


@register("nothing")
def nothing(frame, ctx):
    return None
"""


@pytest.fixture
def registry():
    """A fresh registry with the built-ins; entry points off unless a test turns them on."""
    with transforms.isolated() as fresh:
        yield fresh


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def frame(height=6, width=6):
    return np.random.default_rng(0).uniform(0, 255, (height, width, 3)).astype(np.float32)


def context(index=0, size=(6, 6)):
    return Context(index, 10, size, np.random.default_rng(0))


def test_the_shipped_example_plugin_loads_and_vignettes(registry):
    names = load_plugins(["plugins/my_effects.py"], base_dir=ROOT / "configs")
    assert names == ["vignette"]
    assert transforms.get("vignette").numpy
    assert transforms.get("vignette").origin == "plugin plugins/my_effects.py"
    flat = np.full((21, 31, 3), 200.0, np.float32)
    out = np.asarray(build_chain([{"vignette": {"strength": 0.5}}]).apply(flat, context()))
    assert out[10, 15, 0] == pytest.approx(200.0)
    assert out[0, 0, 0] < 150.0 and out[0, 0, 0] == pytest.approx(out[-1, -1, 0])


def test_a_plugin_file_relative_to_the_config_folder(registry, tmp_path):
    write(tmp_path, "posterize_fx.py", """
        import numpy as np
        from transforms import register

        @register("posterize", numpy=True)
        def posterize(frame, ctx, levels: int = 4):
            '''Reduce each channel to `levels` values.'''
            step = 255.0 / (levels - 1)
            return np.round(frame / step) * step
    """)  # fmt: skip
    assert load_plugin("posterize_fx.py", base_dir=tmp_path) == ["posterize"]
    assert load_plugin("posterize_fx.py", base_dir=tmp_path) == []  # loaded once
    chain = build_chain([{"posterize": {"levels": 2}}])
    out = np.asarray(chain.apply(frame(), context()))
    assert set(np.unique(out)) <= {0.0, 255.0}


def test_a_transform_named_with_its_plugin_file_in_the_chain(registry, tmp_path):
    write(tmp_path, "halve_fx.py", """
        from transforms import register

        @register("halve")
        def halve(frame, ctx):
            return frame * 0.5
    """)  # fmt: skip
    chain = build_chain(["halve_fx.py:halve"], base_dir=tmp_path)
    np.testing.assert_allclose(np.asarray(chain.apply(frame(), context())), frame() * 0.5)


def test_a_plugin_module_on_sys_path(registry, tmp_path, monkeypatch):
    write(tmp_path, "fx_module_plugin.py", """
        from transforms import register

        @register("brighten")
        def brighten(frame, ctx, amount: float = 10.0):
            return frame + amount
    """)  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fx_module_plugin", raising=False)
    assert load_plugins(["fx_module_plugin"]) == ["brighten"]
    assert transforms.get("brighten").origin == "plugin fx_module_plugin"


def install_distribution(folder: Path, entry_points: str) -> None:
    """A minimal installed distribution in `folder`: what pip leaves in site-packages."""
    info = folder / "fx_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fx-dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def test_entry_points_are_found_lazily(tmp_path, monkeypatch):
    write(tmp_path, "fx_entry_module.py", """
        from transforms import register

        @register("swirl")
        def swirl(frame, ctx, turns: float = 1.0):
            '''Swirl (here: identity).'''
            return frame

        @register("twirl")
        def twirl(frame, ctx):
            return frame

        def invert_colors(frame, ctx):
            '''Invert every channel.'''
            return 255.0 - frame
    """)  # fmt: skip
    install_distribution(tmp_path, """
        [animator.transforms]
        swirl = fx_entry_module
        invert = fx_entry_module:invert_colors
    """)  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fx_entry_module", raising=False)
    with transforms.isolated(entry_points=True):
        assert {"swirl", "invert"} <= set(transforms.available())
        assert "fx_entry_module" not in sys.modules  # listed, not imported
        assert transforms.get("swirl").description == "Swirl (here: identity)."
        assert "twirl" in transforms.available()  # registered by the same module
        invert = transforms.get("invert")
        assert invert.description == "Invert every channel."
        assert invert.origin == "plugin entry point invert = fx_entry_module:invert_colors"
        out = build_chain(["invert"]).apply(np.zeros((2, 2, 3), np.float32), context())
        np.testing.assert_array_equal(np.asarray(out), 255.0)


def test_a_broken_entry_point_fails_clearly_and_is_listed(tmp_path, monkeypatch):
    install_distribution(tmp_path, """
        [animator.transforms]
        melt = fx_missing_module_xyz
    """)  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    with transforms.isolated(entry_points=True):
        with pytest.raises(PluginError, match="'fx_missing_module_xyz' .*import failed"):
            transforms.get("melt")
        with pytest.raises(ConfigError, match=r"transforms\[0\]: plugin 'fx_missing_module_xyz'"):
            build_chain(["melt"])
        lines = transforms.describe()
        assert "melt" in lines and any("failed to load" in line for line in lines)


def test_a_module_entry_point_may_register_more_names(tmp_path, monkeypatch):
    write(tmp_path, "fx_many_module.py", """
        from transforms import register

        @register("first_effect")
        def first_effect(frame, ctx):
            return frame

        @register("second_effect")
        def second_effect(frame, ctx):
            return frame
    """)  # fmt: skip
    install_distribution(tmp_path, """
        [animator.transforms]
        first_effect = fx_many_module
    """)  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fx_many_module", raising=False)
    with transforms.isolated(entry_points=True):
        assert transforms.get("second_effect").name == "second_effect"
        assert transforms.get("second_effect").source.startswith("entry point first_effect")


def test_entry_points_are_not_scanned_for_known_names(monkeypatch):
    with transforms.isolated(entry_points=True) as fresh:
        monkeypatch.setattr(fresh, "_entry_points", lambda: pytest.fail("scanned"))
        assert transforms.get("zoom").name == "zoom"


def test_missing_plugin_file(registry, tmp_path):
    with pytest.raises(PluginError) as caught:
        load_plugins(["my_effects.py"], base_dir=tmp_path)
    assert str(caught.value) == (
        f"plugin 'my_effects.py': file not found (looked in {tmp_path / 'my_effects.py'})"
    )


def test_plugin_with_a_syntax_error(registry, tmp_path):
    write(tmp_path, "bad_syntax.py", "import numpy\n\ndef broken(:\n    pass\n")
    with pytest.raises(PluginError, match=r"^plugin 'bad_syntax.py': syntax error at line 3: "):
        load_plugin("bad_syntax.py", base_dir=tmp_path)


def test_plugin_that_fails_to_import(registry, tmp_path):
    write(tmp_path, "needs_more.py", "import fx_not_installed_xyz\n")
    with pytest.raises(PluginError) as caught:
        load_plugin("needs_more.py", base_dir=tmp_path)
    assert str(caught.value).startswith(
        "plugin 'needs_more.py': import failed: ModuleNotFoundError: No module named "
    )
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    assert "animator_plugin_needs_more" not in sys.modules


def test_a_plugin_cannot_take_a_built_in_name(registry, tmp_path):
    write(tmp_path, "thief.py", """
        from transforms import register

        @register("zoom")
        def zoom(frame, ctx):
            return frame
    """)  # fmt: skip
    with pytest.raises(PluginError, match="^transform 'zoom' from thief.py clashes with .*built-in"):
        load_plugin("thief.py", base_dir=tmp_path)
    assert transforms.get("zoom").source == "built-in"


def test_unknown_plugin_module(registry):
    with pytest.raises(PluginError, match="^plugin 'fx_no_such_module': no module named"):
        load_plugin("fx_no_such_module")


def test_plugin_module_with_a_syntax_error(registry, tmp_path, monkeypatch):
    write(tmp_path, "fx_bad_module.py", "x = (\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"^plugin 'fx_bad_module': syntax error in fx_bad"):
        load_plugin("fx_bad_module")


def test_an_unknown_plugin_in_the_chain_is_a_config_error(registry, tmp_path):
    with pytest.raises(ConfigError, match=r"transforms\[0\]: plugin 'gone.py': file not found"):
        build_chain(["gone.py:melt"], base_dir=tmp_path)


@pytest.fixture
def broken(registry, tmp_path):
    write(tmp_path, "broken.py", BROKEN)
    load_plugin("broken.py", base_dir=tmp_path)


def test_a_plugin_that_raises_names_transform_plugin_and_frame(broken):
    chain = build_chain(["explode"])
    chain.apply(frame(), context(index=6))
    with pytest.raises(PluginError) as caught:
        chain.apply(frame(), context(index=7))
    assert str(caught.value) == (
        "transform 'explode' (plugin broken.py) at frame 7 failed: RuntimeError: boom"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)


@pytest.mark.parametrize(
    "name, message",
    [
        ("shrink", "returned shape (5, 6, 3); expected (6, 6, 3)"),
        ("poison", "returned non-finite values (NaN or inf)"),
        ("integers", "returned dtype int32; expected a float array"),
        ("nothing", "returned NoneType; expected an array"),
    ],
)
def test_a_plugin_returning_a_bad_frame_fails_at_once(broken, name, message):
    with pytest.raises(PluginError) as caught:
        build_chain(["zoom", name]).apply(frame(), context(index=3))
    assert str(caught.value) == f"transform {name!r} (plugin broken.py) at frame 3 {message}"


def test_numpy_plugins_get_numpy_and_others_get_the_backend_tensor(registry):
    seen = {}

    @transforms.register("as_numpy", numpy=True)
    def as_numpy(frame, ctx):
        seen["numpy"] = type(frame)
        return frame

    @transforms.register("as_tensor")
    def as_tensor(frame, ctx):
        seen["tensor"] = type(frame)
        return frame

    out = build_chain(["as_numpy", "as_tensor"]).apply(frame(), context())
    assert seen["numpy"] is np.ndarray
    assert seen["tensor"] is type(out) and not isinstance(out, np.ndarray)
