"""A sweep's run: write each variant's YAML, render the unfinished ones with an executor, then
the contact sheet and index.html."""

from __future__ import annotations

import threading
from collections.abc import Callable

from animator.media import images
from animator.sweep import executors, results
from animator.sweep.model import Outcome, Sweep, SweepReport, Variant, variant_yaml


def run(
    sweep: Sweep,
    *,
    jobs: int = 1,
    ray_address: str | None = None,
    on_frame: Callable[[str, int, int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    stop: threading.Event | None = None,
) -> SweepReport:
    """Render the variants that are not finished, then write the contact sheet and index.html.

    Local by default: one variant at a time in this process, or `jobs` processes (one at a time
    on a GPU); with `ray_address` ("auto" or a cluster's address) each variant is a Ray task.
    `on_frame(id, done, total)` follows each variant's frames, `on_outcome` receives each outcome
    as it comes. A failed variant does not stop the others. When `stop` is set, running variants
    end after their current frame (kept for the next run) and no more start.
    """
    for variant in sweep.variants:
        _write_variant_yaml(variant)
    outcomes = {}
    for variant in sweep.variants:
        if variant.finished():
            outcomes[variant.id] = Outcome(variant.id, "skipped", variant.frames_done())
            if on_outcome is not None:
                on_outcome(outcomes[variant.id])
    todo = [v for v in sweep.variants if v.id not in outcomes]
    if todo:
        with executors.open_executor(jobs, ray_address, on_frame, stop) as executor:
            outcomes.update(executors.drive(executor, todo, on_outcome, stop))
    ordered = [outcomes[v.id] for v in sweep.variants]
    if todo or not sweep.sheet_path.is_file():  # a sheet of the same frames is not made twice
        sheet = results.write_contact_sheet(sweep)
    else:
        sheet = sweep.sheet_path
    index = results.write_index(sweep, ordered, sheet)
    return SweepReport(ordered, sheet, index)


def _write_variant_yaml(variant: Variant) -> None:
    text = variant_yaml(variant).encode()
    if variant.yaml_path.is_file() and variant.yaml_path.read_bytes() == text:
        return
    try:
        variant.folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise images.output_error(error, variant.folder) from error
    images.write_atomic(variant.yaml_path, lambda stream: stream.write(text), retry="run the sweep again")
