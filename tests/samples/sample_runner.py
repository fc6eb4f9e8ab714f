"""Run a sample the way a reader does (a subprocess from the repository root), or import it to test a part."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def run_sample(sample: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python samples/<track>/<name>.py ARGS` from the repository root, output captured as text."""
    return subprocess.run(
        [sys.executable, str(sample.relative_to(ROOT)), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def load_sample(sample: Path) -> ModuleType:
    """Import a sample file as a module (its `main()` does not run)."""
    spec = importlib.util.spec_from_file_location(sample.stem, sample)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # @dataclass looks its module up there
    spec.loader.exec_module(module)
    return module
