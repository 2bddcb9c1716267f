"""An animation's YAML file, checked once into frozen models; every error names its key path.

`load(path)` reads the YAML with `yaml.safe_load` (no tags that build objects), applies
`--set key.path=value` overrides, and validates everything together: unknown keys (with the near
name), wrong types, out-of-range values, schedules and the transform chain. Nothing deeper reads
files or the environment. A config is bounded before anything walks it: at most
`MAX_CONFIG_BYTES` of text, `MAX_CONFIG_VALUES` values once YAML aliases are expanded, nested at
most `MAX_CONFIG_DEPTH` deep, and at most `MAX_FRAMES` frames.

The package: `model` (the frozen sections and `Config`), `load` (reading, checking, every
problem at once), `overrides` (key paths), `files` (which settings name files), `soundtrack`
(the audio features a config reads), `objective` (the objective's grammar). These names are
its front door.
"""

from __future__ import annotations

from animator.config.files import (  # noqa: F401
    absolute_files,
    file_digest,
    files_named,
    guide_files,
    map_files,
    names_file,
    names_model_file,
    names_weights_file,
)
from animator.config.load import (  # noqa: F401
    MAX_CONFIG_BYTES,
    MAX_CONFIG_DEPTH,
    MAX_CONFIG_VALUES,
    from_mapping,
    load,
    parse,
    read,
    validation_problems,
)
from animator.config.model import (  # noqa: F401
    NOT_PIXELS,
    SCHEDULED,
    Animation,
    Color,
    Config,
    Dream,
    Noise,
    NoiseInput,
    Output,
    Soundtrack,
    Strict,
    Video,
    VideoInput,
    checkpoint_cadence,
    format_suffix,
)
from animator.config.overrides import (  # noqa: F401
    apply_override,
    get_key,
    set_key,
)
from animator.config.soundtrack import (  # noqa: F401
    FEATURES_FILE,
)
