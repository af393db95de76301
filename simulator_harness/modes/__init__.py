"""The harness's three modes: a frozen regression suite, exploratory failure search, and risk
estimation by importance sampling. Each returns a :class:`simulator_harness.report.Report`."""

from simulator_harness.modes.evaluate import POLICIES, Criteria, Job, SweepOptions, evaluate, run_batches
from simulator_harness.modes.regress import RegressionResult, load_suite, regress, sample_nominal
from simulator_harness.modes.risk import risk
from simulator_harness.modes.search import SearchRun, search

__all__ = ["POLICIES", "Criteria", "Job", "RegressionResult", "SearchRun", "SweepOptions", "evaluate",
           "load_suite", "regress", "risk", "run_batches", "sample_nominal", "search"]
