"""Command-line adapters of the modes: arguments, running, writing the reports.

``avdata-sim regress|search|risk`` each write ``report.json`` and ``report.md`` into ``--out``;
``search`` also saves every failing scenario as a spec under ``<out>/failures/`` so it can join a
regression suite. Batches run on the local process pool (``--workers``, 0 runs inline) or on a
Ray cluster (``--ray-address``) through the same code path; progress bars show on a terminal.
``avdata-sim seed import FILE.xml --out SPEC.toml`` turns a CommonRoad recording into a spec those
three modes run, and prints what it found.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from simulator_harness.errors import CommonRoadError
from simulator_harness.modes.evaluate import POLICIES, Criteria, SweepOptions
from simulator_harness.modes.regress import load_suite, regress
from simulator_harness.modes.report import Report, passed_names, write_report
from simulator_harness.modes.risk import risk
from simulator_harness.modes.search import search
from simulator_harness.modes.seed_import import summarize
from simulator_harness.scenario import load, save
from simulator_harness.seeds import SEED_SPREAD, load_commonroad, seed_from_commonroad

#: Exit code of ``regress`` when a scenario that passed in the baseline does not pass now.
EXIT_REGRESSION = 4
#: The suite shipped with the package.
DEFAULT_SUITE = Path(__file__).resolve().parents[1] / "suites" / "regression"


def add_common(p: argparse.ArgumentParser, mode: str) -> None:
    """Arguments every mode shares."""
    p.add_argument("--out", type=Path, default=Path(f"avdata-sim-{mode}"),
                   help=f"directory for report.json and report.md (avdata-sim-{mode})")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (0)")
    p.add_argument("--policy", choices=sorted(POLICIES), default="idm", help="ego policy under test (idm)")
    p.add_argument("--min-ttc-s", type=float, default=1.0,
                   help="a scenario fails below this time to collision, or on collision/off-road/red light (1.0)")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: CPU count; 0 runs inline)")
    p.add_argument("--batch", type=int, default=16, help="scenarios per vectorised rollout (16)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="run the batches on this Ray cluster instead of the local pool (needs 'ray')")


def _options(args: argparse.Namespace) -> SweepOptions:
    return SweepOptions(workers=args.workers, ray_address=args.ray_address, progress=sys.stderr.isatty(),
                        batch_size=args.batch)


def _finish(report: Report, out: Path) -> None:
    json_path, md_path = write_report(report, out)
    s = report.summary
    print(f"{report.mode}: {s['scenarios']} scenarios, {s['passed']} passed, {s['failed']} failed, "
          f"{s['implausible']} implausible, {len(report.clusters)} failure signatures -> {json_path}, {md_path}",
          flush=True)


def add_regress(p: argparse.ArgumentParser) -> None:
    """Arguments of ``regress``."""
    p.add_argument("--suite", type=Path, default=DEFAULT_SUITE,
                   help="a spec file or a directory of .toml/.json specs (the shipped suite)")
    p.add_argument("--baseline", type=Path, default=None,
                   help="a previous report.json: exit 4 if a scenario that passed there does not pass now")
    p.add_argument("--variants", type=int, default=0, help="seeded variants per spec from its variations (0)")
    add_common(p, "regress")


def run_regress(args: argparse.Namespace) -> int:
    """``avdata-sim regress``."""
    baseline = passed_names(args.baseline) if args.baseline is not None else None
    result = regress(load_suite(args.suite), seed=args.seed, variants=args.variants, policy_name=args.policy,
                     criteria=Criteria(args.min_ttc_s), baseline_passed=baseline, options=_options(args),
                     title=f"Regression suite {args.suite.name}")
    _finish(result.report, args.out)
    for name in result.regressions:
        print(f"REGRESSION {name}: passed in the baseline, does not pass now", file=sys.stderr)
    return EXIT_REGRESSION if result.regressions else 0


def add_search(p: argparse.ArgumentParser) -> None:
    """Arguments of ``search``."""
    p.add_argument("--seed-scenario", type=Path, required=True, help="the spec to search around (.toml/.json)")
    p.add_argument("--budget", type=int, default=128, help="simulations to spend (128)")
    p.add_argument("--iterations", type=int, default=4, help="cross-entropy iterations (4)")
    add_common(p, "search")


def run_search(args: argparse.Namespace) -> int:
    """``avdata-sim search``."""
    run = search(load(args.seed_scenario), args.budget, seed=args.seed, iterations=args.iterations,
                 policy_name=args.policy, criteria=Criteria(args.min_ttc_s), options=_options(args))
    _finish(run.report, args.out)
    if run.failing_specs:
        folder = args.out / "failures"
        folder.mkdir(parents=True, exist_ok=True)
        for spec in run.failing_specs:
            save(spec, folder / f"{spec.name}.toml")
        print(f"search: {len(run.failing_specs)} failing scenarios saved under {folder}", flush=True)
    return 0


def add_risk(p: argparse.ArgumentParser) -> None:
    """Arguments of ``risk``."""
    p.add_argument("--scenario", type=Path, required=True, help="the spec whose variations define the risk")
    p.add_argument("--samples", type=int, default=512, help="importance samples (512)")
    p.add_argument("--naive-samples", type=int, default=None,
                   help="plain Monte Carlo samples run beside it (default: as many as --samples; 0: none)")
    p.add_argument("--cem-iterations", type=int, default=3, help="iterations fitting the proposal (3)")
    p.add_argument("--cem-batch", type=int, default=32, help="simulations per fitting iteration (32)")
    p.add_argument("--defensive", type=float, default=0.1,
                   help="share α of the nominal in the proposal; every weight is at most 1/α, the range the "
                        "upper bound takes (0.1)")
    add_common(p, "risk")


def run_risk(args: argparse.Namespace) -> int:
    """``avdata-sim risk``."""
    report = risk(load(args.scenario), args.samples, seed=args.seed, naive_samples=args.naive_samples,
                  cem_iterations=args.cem_iterations, cem_batch=args.cem_batch, defensive=args.defensive,
                  policy_name=args.policy, criteria=Criteria(args.min_ttc_s), options=_options(args))
    _finish(report, args.out)
    s = report.summary
    print(f"risk: p_fail {s['is_p_fail']:.3g}, upper {s['is_upper']:.3g} at {s['is_confidence']:.0%} "
          f"(empirical Bernstein, defensive α {s['defensive_share']:g}, weight range {s['is_value_range']:g}, "
          f"range term {s['is_range_term']:.3g}); ESS {s['is_ess']:.1f}, Pareto k {s['is_pareto_k']:.2f}, "
          f"reliable {s['is_reliable']}; plain MC {s.get('mc_failures', 0)} failures in {s.get('mc_n', 0)}",
          flush=True)
    return 0


#: Exit code of ``seed import`` for a file it cannot use (the message says why, in one line).
EXIT_BAD_INPUT = 2


def add_seed(p: argparse.ArgumentParser) -> None:
    """The ``seed`` subcommands (``import``)."""
    sub = p.add_subparsers(dest="seed_command", required=True, metavar="ACTION")
    imp = sub.add_parser(
        "import", help="turn a CommonRoad recording (2018b or 2020a XML) into a scenario spec",
        description="Read a CommonRoad scenario, check that its lanelets are one straight one-way road (refusing "
                    "merges, forks, lanes that end, intersections and two-way roads, naming the lanelet), place "
                    "every recorded road user at its first state, and write the spec. Prints the lanes, the agents, "
                    "the ego, what was skipped and why, and whether the recorded tracks pass the plausibility "
                    "gate's bounds. Exit codes: 0 written, 2 a file it cannot use (one line on stderr says why).")
    imp.add_argument("file", type=Path, metavar="FILE.xml", help="the CommonRoad XML file")
    imp.add_argument("--out", type=Path, required=True, metavar="SPEC.toml", help="the spec to write (.toml or .json)")
    imp.add_argument("--ego", type=int, default=None, metavar="ID",
                     help="obstacle id of the ego (default: the longest recorded car or truck track on the road, "
                          "upstream first)")
    imp.add_argument("--name", default=None, help="scenario name (default: the benchmark id)")
    imp.add_argument("--duration-s", type=float, default=None, help="scenario length (default: the recording's)")
    imp.add_argument("--spread", type=float, default=SEED_SPREAD,
                     help=f"relative spread of the variations on the ego's speed and its lead's speed and gap "
                          f"({SEED_SPREAD:g}; 0 writes none)")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    imp.set_defaults(handler=run_seed_import)


def run_seed_import(args: argparse.Namespace) -> int:
    """``avdata-sim seed import``."""
    try:
        cr = load_commonroad(args.file)
        seed = seed_from_commonroad(cr, ego_obstacle_id=args.ego, name=args.name, duration_s=args.duration_s,
                                    spread=args.spread)
    except CommonRoadError as exc:
        message = str(exc).replace("\n", " ")
        if not message.startswith(f"{args.file.name}: ") and str(args.file) not in message:
            message = f"{args.file.name}: {message}"
        print(f"avdata-sim: seed import: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    save(seed.spec, args.out)
    summary = summarize(cr, seed)
    if args.json:
        print(json.dumps({**summary.to_dict(), "out": str(args.out)}, indent=2, sort_keys=True), flush=True)
    else:
        print(f"{summary.format()}\n\nspec -> {args.out}", flush=True)
    return 0
