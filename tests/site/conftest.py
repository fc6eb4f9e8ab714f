"""The built site under build/site (or $LMA_SITE_DIR), shared by the site checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portal.paths import SITE


@pytest.fixture(scope="session")
def site() -> Path:
    root = Path(os.environ.get("LMA_SITE_DIR", SITE))
    if not (root / "index.html").exists():
        pytest.fail(f"{root} has no index.html: build the site first: make build", pytrace=False)
    return root
