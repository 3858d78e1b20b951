"""One progress type for every long job (build, training, embedding, ALS), and slicing it into stages."""
from __future__ import annotations

from typing import Callable

# progress(fraction done 0..1, what is happening): the CLI draws a bar, the app a progress widget.
Progress = Callable[[float, str], None]


def stage(progress: Progress | None, start: float, width: float) -> Progress:
    """A job's own 0..1 progress mapped into its slice [start, start + width] of the overall bar."""

    def report(fraction: float, message: str) -> None:
        if progress:
            progress(min(1.0, start + width * max(0.0, min(1.0, fraction))), message)

    return report
