"""Which file a page is read from, and its front matter: plugins that read a notebook page's source (git
dates) see the committed notebook, mkdocs-jupyter renders the executed copy; front matter is checked."""

from __future__ import annotations

from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.pages import Page

from portal import frontmatter
from portal.paths import DEFAULT_LANGUAGE


def source_of(page: Page) -> Path | None:
    path = page.file.abs_src_path
    return Path(path) if path else None


def is_notebook(page: Page) -> bool:
    return page.file.src_uri.endswith(".ipynb")


def point_at_committed_notebook(page: Page) -> None:
    """While plugins read the page's source (git dates), point them at the committed notebook, not the
    executed copy in build/ that git knows nothing of. `check_and_point_at_executed` points it back."""
    if hasattr(page.file, "notebook_source"):
        page.file.abs_src_path = page.file.notebook_source


def check_and_point_at_executed(page: Page) -> None:
    """Fail on front matter problems; give a notebook page its metadata and its executed copy to render."""
    source = source_of(page)
    if source is None:  # a page this build generated itself
        return
    found = frontmatter.check_file(source)
    if found:
        raise PluginError("front matter problems:\n" + "\n".join(found))
    if hasattr(page.file, "executed_path"):
        # Titles, descriptions and the rest of a notebook's front matter live in its metadata.
        page.meta = {**frontmatter.read_notebook(source), **page.meta}
        page.file.abs_src_path = page.file.executed_path  # what mkdocs-jupyter renders


def edit_url(page: Page, lang: str, repo_url: str | None) -> str | None:
    """The "edit this page" link: the committed notebook (in the page's language) for a notebook page,
    none for a generated page, MkDocs' own otherwise."""
    url = page.edit_url
    if is_notebook(page) and repo_url:
        src = Path("notebooks") / page.file.src_uri
        if lang != DEFAULT_LANGUAGE and Path(page.file.abs_src_path).name.endswith(f".{lang}.ipynb"):
            src = src.with_suffix(f".{lang}.ipynb")
        url = f"{repo_url.rstrip('/')}/edit/main/{src.as_posix()}"
    if page.meta.get("generated"):
        url = None
    return url
