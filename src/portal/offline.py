"""Pack the offline bundle: the whole site (both languages, search working from file://) and the notebooks.

    python -m portal.offline      # after `mkdocs build -f mkdocs.offline.yml`; what `make offline` runs

Writes build/offline/last-mile-academy-offline.zip. Unzip it anywhere and open
last-mile-academy/index.html in a browser: no server and no network needed.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

from portal.paths import BUILD, NOTEBOOKS, ROOT

BUNDLE = BUILD / "offline" / "last-mile-academy"
ARCHIVE = BUILD / "offline" / "last-mile-academy-offline.zip"

START_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Last Mile Academy (offline)</title>
<meta http-equiv="refresh" content="0; url=site/index.html"></head>
<body><p><a href="site/index.html">Last Mile Academy</a> · <a href="site/zh/index.html">最后一公里学院</a></p>
<p>Notebooks to run yourself: <code>notebooks/</code> (see site/get-started/first-call.html to set up).</p>
</body></html>
"""


def pack() -> Path:
    site = BUNDLE / "site"
    if not (site / "index.html").exists():
        raise FileNotFoundError(f"{site} has no index.html: run `mkdocs build -f mkdocs.offline.yml` first")
    (BUNDLE / "index.html").write_text(START_PAGE, encoding="utf-8")
    notebooks = BUNDLE / "notebooks"
    shutil.rmtree(notebooks, ignore_errors=True)
    shutil.copytree(NOTEBOOKS, notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    ARCHIVE.unlink(missing_ok=True)
    with zipfile.ZipFile(ARCHIVE, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(BUNDLE.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(BUNDLE.parent))
    return ARCHIVE


def main() -> int:
    try:
        archive = pack()
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    files = sum(1 for p in BUNDLE.rglob("*") if p.is_file())
    print(
        f"offline bundle: {archive.relative_to(ROOT)} ({archive.stat().st_size / 1e6:.1f} MB, {files} files)"
    )
    print(f"open {(BUNDLE / 'index.html').relative_to(ROOT)} in a browser, or unzip the archive anywhere")
    return 0


if __name__ == "__main__":
    sys.exit(main())
