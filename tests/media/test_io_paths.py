"""A path a user names must be a regular file: one check for images, videos and configs, its fix
carried as a remedy that each front end words."""

from __future__ import annotations

import os

import pytest

from animator import cli, config
from animator.media import clip, images
from animator.settings.errors import PLAIN_ADVICE, PYTHON_ADVICE, ConfigError, InputError

READERS = {  # each kind of file, what reads it, and the error it raises
    "image": (images.read_image, InputError, "input image"),
    "video": (clip.probe, InputError, "input video"),
    "config": (config.load, ConfigError, "config"),
}


def bad_path(tmp_path, case: str):
    if case == "folder":
        return tmp_path
    if case == "pipe":
        os.mkfifo(tmp_path / "pipe")
        return tmp_path / "pipe"
    return tmp_path / "missing.file"


@pytest.mark.timeout(60)  # a pipe that is opened would wait forever
@pytest.mark.parametrize("kind", list(READERS))
@pytest.mark.parametrize(("case", "fact", "remedy"), [
    ("missing", "not found", "check_path"),
    ("folder", "is a folder", "{kind}_file"),
    ("pipe", "is not a regular file (a pipe or a device)", "{kind}_file"),
])
def test_a_path_that_is_no_file_is_refused_with_its_remedy(tmp_path, kind, case, fact, remedy):
    read, error_class, name = READERS[kind]
    path = bad_path(tmp_path, case)
    with pytest.raises(error_class) as caught:
        read(path)
    error = caught.value
    assert error.message == f"{name} '{path}' {fact}"  # the facts alone: no advice in the text
    assert error.remedy == remedy.format(kind=kind)
    assert str(error) == error.message + PYTHON_ADVICE[error.remedy]


def test_every_kind_of_file_has_its_remedy_in_every_front_end():
    from animator.studio.work import STUDIO_ADVICE

    for kind in images.FILE_KINDS:
        assert f"{kind}_file" in PLAIN_ADVICE
    for table in (PYTHON_ADVICE, cli.CLI_ADVICE, STUDIO_ADVICE):
        assert {key: table[key] for key in PLAIN_ADVICE} == PLAIN_ADVICE


def test_the_command_line_says_the_remedy_on_one_line(tmp_path, capsys):
    assert cli.main(["render", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"animator: error: config '{tmp_path}' is a folder: "
                                       "give the path of one YAML file\n")
