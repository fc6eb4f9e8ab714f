"""Check cells for notebook exercises: tell a learner whether their answer works, and fail CI when it does not.

A notebook exercise is a code cell tagged `exercise` (the learner writes there), the instructor's cells tagged
`solution`, then a cell tagged `check` that calls :func:`check`. The learner edition (`make workshop`) drops the
solutions and keeps the check, so a learner runs it and reads a verdict. When the build executes a notebook
(with the solutions in place) it sets ``LMA_STRICT_CHECKS=1`` and a failing check raises, so a solution that
stops working fails CI instead of printing a hint nobody reads.
"""

from __future__ import annotations

import os

STRICT_ENV = "LMA_STRICT_CHECKS"


class ExerciseCheckFailed(AssertionError):
    """A check failed while the build executed the notebook with its solutions."""


def strict() -> bool:
    """True when the build is executing the notebook (a failed check must fail the run)."""
    return os.environ.get(STRICT_ENV) == "1"


def check(passed: bool, *, success: str, hint: str) -> bool:
    """Print whether an exercise's answer works; return `passed`.

    Args:
        passed: the condition that the learner's answer must meet, already evaluated.
        success: what the learner has shown when it holds (printed after a check mark).
        hint: what to look at when it does not (printed after "Not yet:").

    Raises:
        ExerciseCheckFailed: when the check fails and the build is executing the notebook.
    """
    if passed:
        print(f"✓ {success}")
        return True
    if strict():
        raise ExerciseCheckFailed(f"the exercise check failed with the solution in place: {hint}")
    print(f"✗ Not yet: {hint}")
    return False


def defined(namespace: dict[str, object], *names: str) -> bool:
    """True when every name is defined (and not None) in `namespace`, e.g. ``defined(globals(), "audio_ms")``."""
    return all(namespace.get(name) is not None for name in names)
