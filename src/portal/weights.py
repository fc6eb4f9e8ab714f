"""Report what each built page weighs: HTML bytes, gzip bytes, and the search index.

python -m portal.weights     # after `make build`; `make test` prints it at the end
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

from portal.paths import REPORTS, SITE


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=6, mtime=0))


def weights(site: Path = SITE) -> list[tuple[str, int, int]]:
    """(page, html bytes, gzip bytes) for every HTML page, heaviest first."""
    rows = []
    for page in site.rglob("index.html"):
        data = page.read_bytes()
        rows.append((str(page.parent.relative_to(site)) + "/", len(data), gzip_size(data)))
    return sorted(rows, key=lambda row: row[1], reverse=True)


def main() -> int:
    if not (SITE / "index.html").exists():
        print("no built site: run make build first", file=sys.stderr)
        return 2
    lines = [
        "page weights (HTML only; shared CSS/JS are cached across pages)",
        f"  {'page':<52} {'KB':>8} {'gzip KB':>8}",
    ]
    for page, raw, packed in weights():
        lines.append(f"  {page:<52} {raw / 1024:>8.1f} {packed / 1024:>8.1f}")
    for index in sorted(SITE.rglob("search_index.json")):
        data = index.read_bytes()
        lines.append(
            f"  {str(index.relative_to(SITE)):<52} {len(data) / 1024:>8.1f} {gzip_size(data) / 1024:>8.1f}"
        )
    text = "\n".join(lines)
    print(text)
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "page-weights.txt").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
