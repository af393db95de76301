"""Run a pure function over seeded work items: a local process pool by default, Ray on request.

Both back-ends execute the same :func:`_run_chunk` over the same chunks, so the same items give
the same results wherever they run; results come back in input order. An item whose function
raises is recorded as an :class:`ItemFailure` (counted by exception type) and the sweep goes on.
``ray`` is optional and imported only when a cluster address is given.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from rich.progress import Progress

from simulator_harness.errors import RayUnavailable, SweepError

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class SeededItem:
    """One unit of work: its position, an independent 63-bit seed, and free parameters."""

    index: int
    seed: int
    params: Mapping[str, Any] = field(default_factory=dict)


def seeded_items(base_seed: int, n: int,
                 params: Sequence[Mapping[str, Any]] | None = None) -> list[SeededItem]:
    """``n`` items with statistically independent seeds spawned from ``base_seed`` (NumPy
    ``SeedSequence``), so a run is reproducible from one number and streams never overlap."""
    if params is not None and len(params) != n:
        raise SweepError(f"got {len(params)} parameter sets for {n} items")
    children = np.random.SeedSequence(base_seed).spawn(n)
    seeds = [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]
    return [SeededItem(i, s, dict(params[i]) if params is not None else {}) for i, s in enumerate(seeds)]


@dataclass(frozen=True)
class ItemFailure:
    """An item whose function raised: its index, the exception type name and message."""

    index: int
    error_type: str
    message: str


@dataclass(frozen=True)
class SweepResult(Generic[R]):
    """Per-item results in input order (``None`` where the item failed), failures, back-end used
    (``inline``, ``process`` or ``ray``) and wall time in seconds."""

    results: tuple[R | None, ...]
    failures: tuple[ItemFailure, ...]
    backend: str
    wall_s: float

    @property
    def failures_by_type(self) -> dict[str, int]:
        """How many items failed, by exception type name (for metrics)."""
        return dict(Counter(f.error_type for f in self.failures))


Outcome = tuple[bool, Any]


def _run_chunk(fn: Callable[[Any], Any], chunk: Sequence[Any]) -> list[Outcome]:
    """Apply ``fn`` to each item; an exception becomes ``(False, (type name, message))``."""
    out: list[Outcome] = []
    for item in chunk:
        try:
            out.append((True, fn(item)))
        except Exception as exc:  # one bad item must not stop the sweep; it is reported, not hidden
            out.append((False, (type(exc).__name__, str(exc))))
    return out


def _chunks(n: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


def run_sweep(fn: Callable[[T], R], items: Sequence[T], *, workers: int | None = None,
              chunk_size: int | None = None, ray_address: str | None = None, progress: bool = False,
              description: str = "sweep", start_method: str = "spawn") -> SweepResult[R]:
    """Run ``fn`` over ``items`` and return results in input order.

    ``fn`` and the items must be picklable (a module-level function). Back-end: Ray when
    ``ray_address`` is given (``ray.init(address=ray_address)``, or the connection this process
    already holds); in-process when ``workers == 0``; otherwise a ``ProcessPoolExecutor`` with
    ``workers`` processes (default: CPU count) started by ``start_method``. ``chunk_size``
    defaults to about four chunks per worker; ``progress`` shows a rich progress bar.
    """
    if workers is not None and workers < 0:
        raise SweepError(f"workers must be >= 0, got {workers}")
    n = len(items)
    n_workers = workers if workers is not None else (multiprocessing.cpu_count() or 1)
    size = chunk_size or max(1, math.ceil(n / (4 * max(n_workers, 1))))
    if size < 1:
        raise SweepError(f"chunk_size must be >= 1, got {chunk_size}")
    spans = _chunks(n, size)
    outcomes: list[list[Outcome] | None] = [None] * len(spans)
    backend = "ray" if ray_address is not None else ("inline" if n_workers == 0 else "process")
    t0 = time.perf_counter()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(description, total=n)
        if backend == "ray":
            _run_ray(fn, items, spans, outcomes, ray_address or "", lambda k: bar.advance(task, k))
        elif backend == "inline":
            for i, (a, b) in enumerate(spans):
                outcomes[i] = _run_chunk(fn, items[a:b])
                bar.advance(task, b - a)
        else:
            ctx = multiprocessing.get_context(start_method)
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
                pending = {pool.submit(_run_chunk, fn, items[a:b]): i for i, (a, b) in enumerate(spans)}
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        i = pending.pop(fut)
                        outcomes[i] = fut.result()
                        bar.advance(task, spans[i][1] - spans[i][0])
    return _assemble(outcomes, backend, time.perf_counter() - t0)


def _assemble(outcomes: list[list[Outcome] | None], backend: str, wall_s: float) -> SweepResult[Any]:
    results: list[Any] = []
    failures: list[ItemFailure] = []
    for chunk in outcomes:
        if chunk is None:
            raise SweepError("a chunk returned no result")
        for ok, value in chunk:
            if ok:
                results.append(value)
            else:
                failures.append(ItemFailure(len(results), value[0], value[1]))
                results.append(None)
    return SweepResult(tuple(results), tuple(failures), backend, wall_s)


def _run_ray(fn: Callable[[Any], Any], items: Sequence[Any], spans: list[tuple[int, int]],
             outcomes: list[list[Outcome] | None], address: str, advance: Callable[[int], None]) -> None:
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable("a Ray address was given but 'ray' is not installed; install it with "
                             "`pip install ray`, or run without ray_address to use the local process "
                             "pool") from exc
    if not ray.is_initialized():
        try:
            ray.init(address=address)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SweepError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from exc
    remote_chunk = ray.remote(_run_chunk)
    fn_ref = ray.put(fn)
    pending = {remote_chunk.remote(fn_ref, list(items[a:b])): i for i, (a, b) in enumerate(spans)}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            i = pending.pop(ref)
            outcomes[i] = ray.get(ref)
            advance(spans[i][1] - spans[i][0])
