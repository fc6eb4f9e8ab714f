"""Find source notebooks, their translations and their executed copies.

A notebook `notebooks/<path>.ipynb` is the English source; `notebooks/<path>.zh.ipynb` is its
Chinese translation (markdown translated, code cells identical). Only the English one is executed;
the executed Chinese copy takes its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portal.paths import DEFAULT_LANGUAGE, EXECUTED, LANGUAGES, NOTEBOOKS, ROOT


@dataclass(frozen=True)
class Notebook:
    """One notebook page: its English source and, if written, its translations."""

    rel: Path  # e.g. get-started/measure-first-call.ipynb

    @property
    def source(self) -> Path:
        return NOTEBOOKS / self.rel

    def translation(self, lang: str) -> Path:
        """The source file for `lang` (which may not exist yet)."""
        if lang == DEFAULT_LANGUAGE:
            return self.source
        return self.source.with_suffix(f".{lang}.ipynb")

    def executed(self, lang: str = DEFAULT_LANGUAGE) -> Path:
        """The executed copy for `lang` under build/executed/."""
        if lang == DEFAULT_LANGUAGE:
            return EXECUTED / self.rel
        return (EXECUTED / self.rel).with_suffix(f".{lang}.ipynb")

    @property
    def display(self) -> str:
        return str(self.source.relative_to(ROOT))


def language_of(path: Path) -> str:
    """The language of a notebook or page file from its suffix (`x.zh.ipynb` → zh)."""
    suffixes = path.suffixes
    if len(suffixes) >= 2 and suffixes[-2].lstrip(".") in LANGUAGES:
        return suffixes[-2].lstrip(".")
    return DEFAULT_LANGUAGE


def find_notebooks(root: Path = NOTEBOOKS) -> list[Notebook]:
    """Every English source notebook under notebooks/, sorted by path."""
    found = []
    for path in sorted(root.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts or language_of(path) != DEFAULT_LANGUAGE:
            continue
        found.append(Notebook(path.relative_to(root)))
    return found
