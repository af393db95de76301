"""``make bench``: run every bench module, print each figure beside its limit, write results.json."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

import bench
from bench.common import Figure, print_figures, update_readme, write_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--only", default="", help="comma-separated bench module names")
    parser.add_argument("--out", type=Path, default=Path(bench.__file__).parent / "results.json")
    parser.add_argument("--readme", type=Path, default=Path(bench.__file__).parent / "README.md",
                        help="bench README whose figures table is rewritten (not with --quick)")
    args = parser.parse_args(argv)
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    figures: list[Figure] = []
    failed = []
    for mod in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
        if not mod.startswith("bench_") or (wanted and mod not in wanted):
            continue
        print(f"== {mod}", flush=True)
        module = importlib.import_module(f"bench.{mod}")
        try:
            got = module.run(quick=args.quick)
        except Exception as exc:  # a broken bench must not hide the others' figures
            print(f"   FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(mod)
            continue
        print_figures(got)
        figures.extend(got)
    write_results(figures, args.out)
    print(f"wrote {len(figures)} figures to {args.out}")
    if not args.quick and not wanted:
        update_readme(figures, args.readme)
        print(f"updated the figures table in {args.readme}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
