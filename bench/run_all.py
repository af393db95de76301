"""``make bench``: run every bench module, print each figure beside its limit, write results.json.

A module that fails does not hide the others' figures, and does not erase its own: its last good
figures are carried over from the previous ``results.json``, marked with when they were measured,
in both ``results.json`` and the README table; the run then exits 1 and names the failed modules.
``--only`` runs some modules and keeps every other module's figures in ``results.json`` as they were.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import bench
from bench.common import Figure, carry_over, print_figures, read_results, update_readme, write_results

Runner = Callable[..., list[Figure]]


def discover(wanted: set[str]) -> dict[str, Runner]:
    """``bench_*`` modules of this package (only ``wanted`` ones when given) → their ``run``."""
    out: dict[str, Runner] = {}
    for mod in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
        if mod.startswith("bench_") and (not wanted or mod in wanted):
            out[mod] = importlib.import_module(f"bench.{mod}").run
    return out


def main(argv: list[str] | None = None, modules: dict[str, Runner] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--only", default="", help="comma-separated bench module names")
    parser.add_argument("--out", type=Path, default=Path(bench.__file__).parent / "results.json")
    parser.add_argument("--readme", type=Path, default=Path(bench.__file__).parent / "README.md",
                        help="bench README whose figures table is rewritten (not with --quick or --only)")
    args = parser.parse_args(argv)
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    runners = modules if modules is not None else discover(wanted)
    previous, previous_when = read_results(args.out)
    figures: list[Figure] = []
    failed: list[str] = []
    for mod, run in runners.items():
        print(f"== {mod}", flush=True)
        try:
            got = [replace(f, module=mod) for f in run(quick=args.quick)]
        except Exception as exc:  # a broken bench must not hide the others' figures
            print(f"   FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(mod)
            continue
        print_figures(got)
        figures.extend(got)
    figures = carry_over(figures, previous, previous_when, failed, set(runners) if wanted else None)
    write_results(figures, args.out, failed)
    print(f"wrote {len(figures)} figures to {args.out}")
    if not args.quick and not wanted:
        update_readme(figures, args.readme)
        print(f"updated the figures table in {args.readme}")
    if failed:
        print(f"FAILED: {', '.join(failed)} (their last good figures were kept, marked stale)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
