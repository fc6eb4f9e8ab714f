"""Where the portal keeps its sources and build products, relative to the repository root."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "notebooks"
SAMPLES = ROOT / "samples"
BUILD = ROOT / "build"
EXECUTED = BUILD / "executed"
REPORTS = BUILD / "reports"
SITE = BUILD / "site"

DEFAULT_LANGUAGE = "en"
LANGUAGES = ("en", "zh")
