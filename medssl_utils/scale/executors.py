"""Run grid units on an engine: a plain loop here, a pool of worker processes on this machine, SLURM (or local
subprocess) array jobs via submitit, or Ray tasks.

Contract: ``run_one(unit)`` writes the unit's results to disk itself (idempotently) and ``is_done(unit)`` reads
them back, so the engine only has to run code, never to carry results. That makes every engine give the same
files, lets a killed run resume (done units are skipped before submitting), and makes retries safe: after each
round the units still not done are submitted again, up to ``max_retries`` times, and whatever is left is
returned to the caller. ``run_one`` and ``is_done`` must pickle (module-level functions, ``functools.partial``).
"""
from __future__ import annotations

import importlib
import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from ..errors import MedsslError
from ..progress import bar

EXECUTORS = ("local", "processes", "submitit", "ray")
SUBMITIT_CLUSTERS = ("slurm", "local", "debug")
EXTRA_HINT = "pip install -e '.[cluster]'"

# field -> (accepted types, words for the error message, smallest allowed value for numbers)
_FIELD_RULES: dict[str, tuple[tuple[type, ...], str, int | None]] = {
    "folder": ((str, os.PathLike), "a folder path (string)", None),
    "cluster": ((str, type(None)), f"null (auto: SLURM when present) or one of {', '.join(SUBMITIT_CLUSTERS)}", None),
    "partition": ((str, type(None)), "a SLURM partition name (string) or null", None),
    "gpus_per_task": ((int,), "an integer >= 0", 0),
    "cpus_per_task": ((int,), "an integer >= 1", 1),
    "timeout_min": ((int,), "an integer number of minutes >= 1", 1),
    "array_parallelism": ((int,), "an integer >= 1", 1),
    "chunk_size": ((int,), "an integer number of units per array task >= 1", 1),
    "max_retries": ((int,), "an integer >= 0", 0),
    "ray_address": ((str, type(None)), "a Ray address (e.g. 'auto', 'ray://head:10001') or null (start a local Ray)", None),
    "ray_num_cpus": ((int, type(None)), "an integer >= 1 or null (all CPUs)", 1),
    "workers": ((int, type(None)), "an integer >= 1 or null (one per CPU core; one when a GPU is visible)", 1),
}


@dataclass(frozen=True)
class ExecutorOptions:
    """How units are placed on an engine; every field has a default that works on a laptop."""

    folder: str = ".cache/medssl/submitit"     # submitit's pickles and job logs
    cluster: str | None = None                 # None: submitit's auto-detection (SLURM when present)
    partition: str | None = None
    gpus_per_task: int = 0
    cpus_per_task: int = 2
    timeout_min: int = 60
    array_parallelism: int = 16
    chunk_size: int = 4                        # units per array task: fewer, longer jobs for a scheduler
    max_retries: int = 2
    ray_address: str | None = None             # None: start a local Ray for this call
    ray_num_cpus: int | None = None
    workers: int | None = None                 # processes: None = one per CPU core (one when a GPU is visible)

    @classmethod
    def from_options(cls, d: dict | None) -> "ExecutorOptions":
        """Checked options from a profile or ``-p executor_options=...``: one line naming a wrong key."""
        if d is None:
            return cls()
        if isinstance(d, cls):
            return d
        if not isinstance(d, dict):
            raise MedsslError(f"executor_options: expected a mapping of option: value, got {type(d).__name__}")
        unknown = sorted(set(map(str, d)) - set(_FIELD_RULES))
        if unknown:
            raise MedsslError(f"executor_options: unknown key(s) {unknown}; expected some of {', '.join(_FIELD_RULES)}")
        for key, value in d.items():
            _check_field(key, value)
        if d.get("ray_address") is not None and d.get("ray_num_cpus") is not None:
            raise MedsslError("executor_options.ray_num_cpus: only for a local Ray (ray_address: null); "
                              "a running cluster has its own CPUs")
        return cls(**{k: (os.fspath(v) if k == "folder" else v) for k, v in d.items()})


def _check_field(key: str, value: Any) -> None:
    types, expected, low = _FIELD_RULES[key]
    ok = isinstance(value, types) and not isinstance(value, bool)
    if ok and isinstance(value, int) and low is not None:
        ok = value >= low
    if ok and key == "cluster" and value is not None:
        ok = value in SUBMITIT_CLUSTERS
    if not ok:
        raise MedsslError(f"executor_options.{key}: expected {expected}, got {value!r} ({type(value).__name__})")


def require(module: str, executor: str):
    """The optional engine's module, or one line saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MedsslError(f"executor {executor!r} needs the optional extra: {EXTRA_HINT}") from None


def execute(units: Iterable, run_one: Callable[[Any], Any], *, is_done: Callable[[Any], bool], executor: str = "local",
            options: ExecutorOptions | dict | None = None, progress: bool = False) -> list:
    """Run ``run_one(u)`` for every unit not yet ``is_done``; return the units still not done (empty: success).

    ``local`` is a plain loop here: an exception propagates with its traceback (as before, no retries: a failure
    in this process would recur). ``processes``, ``submitit`` and ``ray`` report each failed unit, job or task on
    one line, keep going, and resubmit the units left undone up to ``options.max_retries`` times.
    """
    if executor not in EXECUTORS:
        raise MedsslError(f"unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    opts = ExecutorOptions.from_options(options)
    if executor in ("submitit", "ray"):
        require(executor, executor)
    todo = [u for u in units if not is_done(u)]
    if not todo:
        return []
    if executor == "processes" and process_workers(opts, len(todo)) == 1:
        executor = "local"   # one worker: no pool to start; this process has the threads
    if executor == "local":
        for u in bar(todo, desc="units", enabled=progress):
            run_one(u)
        return [u for u in todo if not is_done(u)]
    submit = {"processes": _process_rounds, "submitit": _submitit_rounds, "ray": _ray_rounds}[executor]
    return submit(todo, run_one, is_done, opts, progress)


def _retry(todo: list, is_done: Callable[[Any], bool], max_retries: int, one_round: Callable[[list, int], None]) -> list:
    """Rounds until every unit is done or the retries are spent; done-ness is read from disk, never from a job."""
    pending = todo
    for attempt in range(max_retries + 1):
        one_round(pending, attempt)
        pending = [u for u in pending if not is_done(u)]
        if not pending:
            break
        if attempt < max_retries:
            _report(f"{len(pending)} unit(s) not done after attempt {attempt + 1}; resubmitting them")
    return pending


def _report(message: str) -> None:
    """Failures are always shown (not a progress bar): one line on stderr."""
    print(f"medssl: {message}", file=sys.stderr, flush=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def run_chunk(run_one: Callable[[Any], Any], chunk: list) -> list[str]:
    """One array task: its units in order; a failing unit is recorded and the next one still runs."""
    errors = []
    for u in chunk:
        try:
            run_one(u)
        except Exception as exc:    # noqa: BLE001 - reported by the driver, the unit stays undone and is retried
            errors.append(f"unit {u!r} failed: {_first_line(exc)}")
    return errors


def chunks(units: list, size: int) -> list[list]:
    """Consecutive slices of the (deterministically ordered) unit list."""
    return [units[i:i + size] for i in range(0, len(units), size)]


# ---------------------------------------------------------------- processes
def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:    # not Linux
        return os.cpu_count() or 1


def process_workers(opts: ExecutorOptions, n_units: int) -> int:
    """How many worker processes: ``workers``, else one per core, but one where a GPU is visible (the units
    would share it) and never more than there are units."""
    n = opts.workers
    if n is None:
        import torch

        n = 1 if torch.cuda.is_available() else _cores()
    return max(1, min(n, n_units))


def _worker_init(threads: int) -> None:
    """Each worker gets its share of the cores (one thread each by default). What that buys: results that do not
    depend on the machine's core count (finetuning and the inversions change with the thread count), and on the
    project's 2 cores about 10% on many short units (benchmarks/bench_executors.py), nothing on a few long ones."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _process_rounds(todo: list, run_one, is_done, opts: ExecutorOptions, progress: bool) -> list:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    workers = process_workers(opts, len(todo))
    threads = max(1, _cores() // workers)
    context = multiprocessing.get_context("spawn")   # fork is unsafe once torch's thread pools exist

    def one_round(pending: list, attempt: int) -> None:
        with ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context,
                                 initializer=_worker_init, initargs=(threads,)) as pool:
            futures = {pool.submit(run_one, u): u for u in pending}
            for f in bar(as_completed(futures), total=len(futures), desc=f"units, {workers} processes"
                         f"{f' (attempt {attempt + 1})' if attempt else ''}", enabled=progress):
                try:
                    f.result()
                except Exception as exc:    # noqa: BLE001 - reported; the unit stays undone and is retried
                    _report(f"unit {futures[f]!r} failed: {_first_line(exc)}")

    return _retry(todo, is_done, opts.max_retries, one_round)


# ---------------------------------------------------------------- submitit
def _submitit_rounds(todo: list, run_one, is_done, opts: ExecutorOptions, progress: bool) -> list:
    submitit = require("submitit", "submitit")
    try:
        ex = submitit.AutoExecutor(folder=opts.folder, cluster=opts.cluster)
    except (RuntimeError, ValueError) as exc:
        raise MedsslError(f"executor 'submitit': no cluster to submit to ({_first_line(exc)}); "
                          "set executor_options.cluster to 'local' to run array jobs on this machine") from None
    params: dict[str, Any] = {"timeout_min": opts.timeout_min, "cpus_per_task": opts.cpus_per_task, "name": "medssl"}
    if opts.gpus_per_task:   # none asked: SLURM gets no GPU request and a local job sees no GPU
        params["gpus_per_node"] = opts.gpus_per_task
    if ex.cluster == "slurm":
        params["slurm_array_parallelism"] = opts.array_parallelism
        if opts.partition:
            params["slurm_partition"] = opts.partition
    ex.update_parameters(**params)

    def one_round(pending: list, attempt: int) -> None:
        groups = chunks(pending, opts.chunk_size)
        jobs = ex.map_array(run_chunk, [run_one] * len(groups), groups)
        for job, group in bar(list(zip(jobs, groups)), desc=f"array tasks (attempt {attempt + 1})", enabled=progress):
            try:
                for line in job.result():
                    _report(f"job {job.job_id}: {line}")
            except Exception as exc:    # noqa: BLE001 - a job that died (timeout, node failure) does not stop the others
                _report(f"job {job.job_id} ({len(group)} unit(s), first {group[0]!r}) failed: {_first_line(exc)}")

    return _retry(todo, is_done, opts.max_retries, one_round)


# ---------------------------------------------------------------- ray
@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, *, quiet: bool = True) -> Iterator[Any]:
    """Ray, initialised if it was not; shut down afterwards only if this call started it."""
    ray = require("ray", "ray")
    started = not ray.is_initialized()
    if started:
        kwargs = {"num_cpus": num_cpus} if address is None else {}
        ray.init(address=address, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
                 logging_level=logging.WARNING if quiet else logging.INFO, **kwargs)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def apply(run_one: Callable[[Any], Any], unit: Any) -> None:
    """A Ray task body (``ray.remote`` needs a plain function, not a partial)."""
    run_one(unit)


def _ray_rounds(todo: list, run_one, is_done, opts: ExecutorOptions, progress: bool) -> list:
    with ray_session(opts.ray_address, opts.ray_num_cpus, quiet=not progress) as ray:
        have = ray.cluster_resources()
        for res, need in (("CPU", opts.cpus_per_task), ("GPU", opts.gpus_per_task)):
            if need and have.get(res, 0) < need and opts.ray_address is None:   # a fixed local Ray would wait forever
                raise MedsslError(f"executor 'ray': a task asks for {need} {res}(s) (executor_options."
                                  f"{res.lower()}s_per_task) but this Ray has {have.get(res, 0):g}")
        task = ray.remote(num_cpus=opts.cpus_per_task, num_gpus=opts.gpus_per_task, max_retries=0)(apply)
        fn = ray.put(run_one)

        def one_round(pending: list, attempt: int) -> None:
            refs = [task.remote(fn, u) for u in pending]
            for u, ref in bar(list(zip(pending, refs)), desc=f"ray tasks (attempt {attempt + 1})", enabled=progress):
                try:
                    ray.get(ref)
                except Exception as exc:    # noqa: BLE001 - reported; the unit stays undone and is retried
                    _report(f"ray task for unit {u!r} failed: {_first_line(_ray_cause(exc))}")

        return _retry(todo, is_done, opts.max_retries, one_round)


def _ray_cause(exc: BaseException) -> BaseException:
    """The user's exception inside Ray's wrapper (whose own message starts with a traceback banner)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc
