"""Measure the built site the way a reader on a slow phone meets it: Lighthouse, gzip, Slow 3G.

    python -m portal.bench_site [--runs 3]      # what `make bench-site` runs after building

Serves build/site on 127.0.0.1 with gzip, runs Lighthouse (mobile) on the home page, the first tutorial
and the heaviest notebook page in every language, with Lighthouse's default throttling and with Chrome's
"Slow 3G" numbers (simulated, as Lighthouse does by default, and applied to the browser), and prints the median of the runs next to each budget. Timing scores vary from run to
run, so this reports them and never fails on them; `make test` enforces the deterministic budgets
(bytes, accessibility).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from portal import budgets
from portal.lighthouse import SLOW_3G, SLOW_3G_APPLIED, audit, serve
from portal.paths import REPORTS, SITE

PROFILES = {"default": [], "slow-3g simulated": SLOW_3G, "slow-3g applied": SLOW_3G_APPLIED}


def positive_int(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 9:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number from 1 to 9")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.bench_site", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=positive_int, default=3, help="Lighthouse runs per page and profile (median)"
    )
    args = parser.parse_args(argv)
    if not (SITE / "index.html").exists():
        print("error: no built site: run make build first", file=sys.stderr)
        return 2

    rows = []
    # A copy: a build started while the bench runs (make serve, an editor's save) must not pull pages away.
    with (
        tempfile.TemporaryDirectory(prefix="lma-bench-") as tmp,
        serve(shutil.copytree(SITE, Path(tmp) / "site")) as base,
    ):
        for page in budgets.audited_pages():
            for profile, flags in PROFILES.items():
                runs = [audit(base + page.path, throttling=flags) for _ in range(args.runs)]
                lcp = statistics.median(r.lcp_ms or 0 for r in runs)
                perf = statistics.median(r.performance or 0 for r in runs)
                kb = runs[0].transferred_bytes / 1024
                a11y = min(r.accessibility for r in runs)
                budget_ok = kb <= budgets.TRANSFER_KB and a11y >= budgets.ACCESSIBILITY
                if profile.startswith("slow-3g"):
                    budget_ok = budget_ok and lcp <= page.lcp_budget_ms
                rows.append((page, profile, kb, perf, a11y, lcp, budget_ok))
                print(
                    f"  /{page.path} ({profile}): {kb:.0f} KB, performance {perf:.0f}, accessibility {a11y:.0f}, "
                    f"LCP {lcp / 1000:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )

    lines = [
        f"Lighthouse (mobile), median of {args.runs} run(s), site served from 127.0.0.1 with gzip",
        "",
        "| page | lang | profile | KB | performance | accessibility | LCP (s) | LCP budget (s) | budget |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for page, profile, kb, perf, a11y, lcp, ok in rows:
        lcp_budget = f"{page.lcp_budget_ms / 1000:.1f}" if profile.startswith("slow-3g") else "–"
        lines.append(
            f"| {page.kind} `/{page.path}` | {page.lang} | {profile} | {kb:.0f} | {perf:.0f} | {a11y:.0f} "
            f"| {lcp / 1000:.1f} | {lcp_budget} | {'met' if ok else 'MISSED'} |"
        )
    lines += ["", "| other budget | measured | budget |", "|---|---:|---:|"]
    for path, size in budgets.notebook_html_sizes().items():
        lines.append(f"| notebook HTML `/{path}` | {size / 1024:.0f} KB | {budgets.NOTEBOOK_HTML_KB} KB |")
    for path, size in budgets.search_index_sizes().items():
        lines.append(f"| search index `{path}` | {size / 1024:.0f} KB | {budgets.SEARCH_INDEX_KB} KB |")
    text = "\n".join(lines)
    print(text)
    REPORTS.mkdir(parents=True, exist_ok=True)
    Path(REPORTS / "bench-site.md").write_text(text + "\n", encoding="utf-8")
    print(f"\nwritten to {REPORTS / 'bench-site.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
