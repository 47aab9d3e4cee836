"""Small helpers shared by the benchmark scripts: timing, machine facts, markdown tables, and a
worker process whose tasks run under a time limit.

Import it from a script in ``benchmarks/`` (the script's folder is on ``sys.path``, and Dask's
spawned workers inherit that path, so tasks built here run on a ``LocalCluster`` too)::

    from _common import TimedWorker, machine_info, markdown_table, median_seconds
"""

from __future__ import annotations

import importlib.metadata
import multiprocessing
import os
import platform
import resource
import subprocess
import time

import numpy as np


def median_seconds(function, repeats):
    """Median wall time of ``repeats`` calls of ``function()`` (``time.perf_counter``)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def write_results(path, lines):
    """Write a results table (a list of markdown lines) and say where it went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


def cpu_model():
    """The CPU's model name from ``lscpu`` (``platform.processor()`` where it is missing)."""
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in output.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info(packages=()):
    """Facts that make a timing reproducible: CPU, cores, memory, OS, Python, package versions.

    Parameters
    ----------
    packages : iterable of str
        Distribution names whose installed versions are reported ("not installed" if absent).

    Returns
    -------
    dict
        ``{"cpu", "cores", "memory_gib", "platform", "python", "load_average", "versions"}``.
    """
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
        "versions": versions,
    }


def markdown_table(headers, rows, align=None):
    """A GitHub markdown table; ``align`` is a string of ``l``/``r`` per column (default: left)."""
    align = align or "l" * len(headers)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def reset_peak_memory():
    """Reset this process's peak resident memory (Linux ``clear_refs``); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_memory_gib():
    """Peak resident memory of this process since start or the last :func:`reset_peak_memory`."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


MEASUREMENTS = ["task_seconds", "peak_gib"]


def measured(task):
    """``task(key, **options)`` whose table also records the task's seconds and peak memory.

    ``peak_gib`` is the process's peak resident memory while it ran the task (VmHWM after a
    reset: interpreter and libraries included), so on a cluster it is that worker's.
    """

    def run(key, **options):
        reset_peak_memory()
        started = time.perf_counter()
        table = task(key, **options)
        table["task_seconds"] = time.perf_counter() - started
        table["peak_gib"] = peak_memory_gib()
        return table

    run.__name__ = task.__name__
    return run


def without_measurements(table):
    """A :func:`measured` table without its timing columns, renumbered: what two runs must agree on."""
    return table.drop(columns=MEASUREMENTS).set_axis(range(len(table)))


def serial_and_cluster(keys, task, workers, **options):
    """Run ``keys`` through ``measured(task)`` serially in this process, then on a fresh cluster.

    The cluster is a ``LocalCluster(processes=True, n_workers=workers, threads_per_worker=1)``.

    Returns
    -------
    tuple
        ``(serial, parallel, serial_s, parallel_s, ready_s, equal)``: the two tables, the seconds
        of each run, the cluster's start-up seconds, and whether the tables agree
        (:func:`without_measurements`).
    """
    from distributed import Client, LocalCluster

    from convexsched.execution.universe import run_universe

    started = time.perf_counter()
    serial = run_universe(keys, measured(task), progress=False, **options)
    serial_s = time.perf_counter() - started
    started = time.perf_counter()
    with (
        LocalCluster(processes=True, n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        ready_s = time.perf_counter() - started
        started = time.perf_counter()
        parallel = run_universe(keys, measured(task), client=client, progress=False, **options)
        parallel_s = time.perf_counter() - started
    equal = without_measurements(serial).equals(without_measurements(parallel))
    return serial, parallel, serial_s, parallel_s, ready_s, equal


class TimeLimitExceeded(Exception):
    """The worker sent nothing within the time limit; it was killed."""


class WorkerDied(Exception):
    """The worker exited mid-task (a crash, or the kernel ending it for memory)."""


def _serve(handler, connection, memory_gib, quiet):
    if memory_gib:
        limit = int(memory_gib * 2**30)
        # A capped address space turns an out-of-memory solver into a MemoryError here instead
        # of the kernel's OOM killer picking a process elsewhere on the machine.
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if quiet:
        # Native libraries print banners straight to file descriptor 1, past sys.stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    state = {}
    while True:
        request = connection.recv()
        if request is None:
            return
        number, task = request
        try:
            for message in handler(task, state):
                connection.send((number, "message", message))
            connection.send((number, "done", None))
        except Exception as error:  # reported to the parent, which decides what it means
            connection.send((number, "error", f"{type(error).__name__}: {error}"))


class TimedWorker:
    """A spawned worker process running ``handler(task, state)`` generators under a time limit.

    ``handler`` must be a module-level function (spawn pickles it by name). It yields messages
    (picklable) as it goes; ``state`` is a dict kept across tasks (caches). The parent gives
    each message ``limit`` seconds to arrive: a worker that hangs, or dies (e.g. out of memory),
    is killed and replaced by a fresh one on the next task, and the task raises.

    Parameters
    ----------
    handler : callable
    memory_gib : float, optional
        Address-space cap of the worker (``RLIMIT_AS``).
    quiet : bool
        Send the worker's standard output (file descriptor 1) to ``/dev/null``.
    """

    def __init__(self, handler, memory_gib=None, quiet=False):
        self.handler = handler
        self.memory_gib = memory_gib
        self.quiet = quiet
        self._process = None
        self._connection = None
        self._tasks = 0

    def _start(self):
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(self.handler, child, self.memory_gib, self.quiet), daemon=True)
        self._process.start()
        child.close()
        self._connection = parent

    def run(self, task, limit, first_limit=None):
        """Send ``task``; yield the handler's messages as they arrive.

        Parameters
        ----------
        limit : float
            Seconds allowed between two messages.
        first_limit : float, optional
            Seconds allowed for the first message (setup work such as building data).

        Raises
        ------
        TimeLimitExceeded, WorkerDied
            After killing the worker.
        RuntimeError
            The handler raised; the message names the exception. The worker lives on.
        """
        if self._process is None or not self._process.is_alive():
            self._start()
        self._tasks += 1
        # Numbered tasks: what is left of a task the caller stopped reading is skipped.
        self._connection.send((self._tasks, task))
        wait = first_limit if first_limit is not None else limit
        while True:
            try:
                ready = self._connection.poll(wait)
                number, kind, payload = self._connection.recv() if ready else (None, None, None)
            except (EOFError, ConnectionResetError):
                code = self._process.exitcode
                self.stop()
                raise WorkerDied(f"worker exited with code {code}") from None
            if not ready:
                self.stop()
                raise TimeLimitExceeded(f"no result within {wait:g} s")
            if number != self._tasks:
                continue
            if kind == "done":
                return
            if kind == "error":
                raise RuntimeError(payload)
            yield payload
            wait = limit

    def stop(self):
        """Kill the worker (if running); the next :meth:`run` starts a fresh one."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
            self._connection.close()
        self._process = None
        self._connection = None
