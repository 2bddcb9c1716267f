"""One variant rendered where an executor sends it (this process, a worker process, a Ray task)."""

from __future__ import annotations

import time
import warnings

from animator import config as config_module
from animator.settings.errors import AnimatorError, Interrupted
from animator.sweep.model import Outcome


def render_variant(variant_id: str, data: dict, base_dir: str, source: str, mailbox=None) -> Outcome:
    """Render one variant from its mapping (what an executor sends to a process or a Ray task),
    resuming what an earlier run left; a failure becomes a `failed` Outcome, never an exception.

    `mailbox.put((id, done, total))` receives the progress; `mailbox.is_set()` asks to stop.
    """
    from animator.renderer.loop import render

    began = time.monotonic()
    try:
        if mailbox is not None and mailbox.is_set():
            return Outcome(variant_id, "stopped")
        config = config_module.from_mapping(data, base_dir, source=source)
        report = None if mailbox is None else (lambda done, total, _: mailbox.put((variant_id, done, total)))
        result = render(config, resume=True, progress=report, stop=mailbox, note=_warn)
        return Outcome(variant_id, "finished", result.frames, time.monotonic() - began)
    except Interrupted:
        return Outcome(variant_id, "stopped", seconds=time.monotonic() - began)
    except AnimatorError as error:
        return Outcome(variant_id, "failed", message=error.message, remedy=error.remedy,
                       exit_code=error.exit_code, facts=error.facts)
    except Exception as error:  # an internal error in one variant must not stop the others
        return Outcome(variant_id, "failed", message=f"internal error: {type(error).__name__}: {error}",
                       exit_code=1)


def _warn(text: str) -> None:
    warnings.warn(text, stacklevel=2)
