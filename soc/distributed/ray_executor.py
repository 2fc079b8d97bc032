"""The same hunt on a Ray cluster (``soc hunt --ray [ADDRESS]``, ``HuntRequest.ray``; the ``soc[ray]`` extra).

The inputs are cut in the partitions of ``soc.distributed.task`` (files, batches of small EVTX files, line-aligned
byte ranges of a large file of a line format: ``RAY_SPLIT_ENGINES``), each one a Ray task running ``run_task``, the
same pure function the local worker processes run. The driver merges the results in the tasks' order with the local
hunt's own merge (``soc.distributed.local.merge_all``): the matches into its Hunter (correlation at the end), the
detector rows into its DetectorRunner, dead letters and inputs' ends into its sink. So the result is the local
hunt's, whatever the number of nodes, and a task that Ray runs again (its worker died: ``max_retries``) gives the
same result once.

The detectors run on detector partitions, one Ray task per CPU of the cluster (``soc.distributed.shuffle``): each
task returns, besides its result, its detector rows cut by a hash of each detector's entity key into one piece per
partition (Ray results of their own: they go from the task's node to the partition's, not through the driver);
after the merge, partition ``i`` gets piece ``i`` of every task and the values that span keys from the driver
(drop's "now", first-seen's baseline start, the learned DNS resolvers), and its hits come back to the driver's
runner (``DetectorRunner.done``) in partition order. A job's runner (state carried across runs) and a rise whose
zeros could rise run in the driver as before. The Sigma correlations run on as many partitions by their group-by
values: the driver holds every match (they are alerts too), cuts those of the correlated rules and sends each
partition its piece; a correlation of correlations, one without group-by and a job's (state carried) run in the
driver. The alerts are built and delivered by the driver as in a local hunt. Inputs must be paths that every node
sees at the same place (a shared filesystem; relative ones are read from the driver's working directory; not
standard input), and every node needs soc installed, the same version as the driver's (its rules and parsers come
with it).

``auto`` joins the cluster of ``RAY_ADDRESS`` or a running local one, else starts a local one; ``ray://host:10001``
is a remote cluster (Ray Client). A hunt leaves Ray as it found it: connected by the caller, it stays connected;
connected here, it is shut down at the end.

Only this module imports Ray, and only when asked.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from soc.distributed.task import HuntPlan, Partition, TaskResult

MAX_RETRIES = 3  # runs of a task whose worker died (Ray's own default for tasks)
CLIENT_ATTEMPTS = 3  # connections to a ``ray://`` address: its proxy starts a server per client, which died at once
# in 2 of 5 runs of the 2-node test here right after a test had killed workers of another cluster ("Starting Ray
# client server failed", its log empty); a new connection gets a new server
AHEAD = 2  # tasks submitted ahead per CPU of the cluster: results wait in the object store, not all at once
MAX_PARTITIONS = 64  # detector and correlation partitions at most (one per CPU below that): each task returns a
# piece per partition, each partition takes one of every task (tasks x partitions objects in the object store)


def _task(plan: HuntPlan, part: Partition, cwd: str | None = None) -> TaskResult:
    """A Ray task: one partition (``run_task``) read from the driver's working directory ``cwd`` (relative paths
    name the same files as in the driver, and are recorded as it gives them), without EVTX processes of its own
    (Ray gives the parallelism)."""
    os.environ.setdefault("SOC_EVTX_PROCESSES", "1")
    from soc.distributed.task import run_task

    if cwd is not None and cwd != os.getcwd():
        os.chdir(cwd)
    return run_task(plan, part)


def _shuffled(task: Callable, plan: HuntPlan, part: Partition, cwd: str | None, route: dict, n: int):
    """A Ray task of ``n`` + 1 results: ``task``'s, then its detector rows cut into the ``n`` detector partitions'
    pieces (``soc.distributed.shuffle.cut``; ``n`` 0: the result alone)."""
    result = task(plan, part, cwd)
    if not n:
        return result
    from soc.distributed.shuffle import cut

    return (result, *cut(result.detectors, plan.detectors, route, n))


def connect(address: str) -> bool:
    """Connect to the cluster at ``address`` (``auto``: as ``ray.init()`` finds or starts one); False if this
    process was connected already (to whatever cluster the caller chose)."""
    import ray

    if ray.is_initialized():
        return False
    left = CLIENT_ATTEMPTS - 1 if address.startswith("ray://") else 0
    while True:
        try:
            ray.init(address=None if address == "auto" else address, include_dashboard=False,
                     logging_level="WARNING", configure_logging=True)
            return True
        except ConnectionAbortedError:  # Ray Client: the per-client server it starts died at once
            if not left:
                raise
            left -= 1
            ray.shutdown()  # whatever the failed connection left
            time.sleep(1.0)


def executor(address: str, rules, placeholders: str | None, task: Callable | None = None,
             max_retries: int = MAX_RETRIES, trace: list | None = None):
    """A ``soc.hunt`` executor that runs the hunt's tasks on the Ray cluster at ``address``. ``task``: the remote
    function's body (default ``run_task``; a test's may fail on purpose); ``trace``: a list that gets the detector
    partitions' results (``shuffle.PartitionResult`` with their keys: a test). A ``HuntError`` if Ray is not
    installed."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        from soc.hunt import HuntError

        raise HuntError("--ray needs Ray: pip install 'soc[ray]'")

    def run(sources, stages, on_bytes):
        from soc.distributed.task import HuntPlan

        specs = None if stages.runner is None else tuple(stages.runner.specs)
        plan = HuntPlan(tuple(map(str, rules)), placeholders, specs, stages.options)
        return hunt(address, plan, sources, stages.sink, stages.hunter, stages.runner, on_bytes,
                    task or _task, max_retries, trace)

    return run


def hunt(address: str, plan: HuntPlan, sources, sink, hunter, runner, on_bytes=None, task: Callable = _task,
         max_retries: int = MAX_RETRIES, trace: list | None = None) -> list:
    """Hunt ``sources`` on Ray into ``hunter``, ``runner`` (None: no detectors) and ``sink`` (closed at the end),
    as ``soc.distributed.local.hunt`` does with processes, the detectors that run by key on one detector partition
    per CPU of the cluster (``soc.distributed.shuffle``; their hits in ``runner.done``); returns the inputs' stats."""
    import ray

    from soc.distributed import shuffle
    from soc.distributed.local import merge_all
    from soc.distributed.task import RAY_SPLIT_ENGINES, partitions

    if any(s.path == "-" for s in sources):
        from soc.hunt import HuntError

        raise HuntError("--ray reads paths that every node sees: standard input cannot be hunted on Ray")
    parts = partitions(sources, plan.options, engines=RAY_SPLIT_ENGINES)
    cwd = os.getcwd()
    mine = connect(address)
    try:
        cpus = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        route = shuffle.routes(runner) if parts else {}
        n = min(cpus, MAX_PARTITIONS) if route else 0  # detector partitions
        # SPREAD: the tasks over every node (each reads its own inputs), not first the driver's node until it is full
        remote = ray.remote(num_returns=1 + n, max_retries=max_retries, retry_exceptions=False,
                            scheduling_strategy="SPREAD")(_shuffled)
        shared = ray.put(plan)
        ahead = max(cpus * AHEAD, 2)
        refs: dict[int, list | ray.ObjectRef] = {}
        pieces: list[list] = []  # per task, its n pieces' refs (in the object store until the partitions ran)
        firsts: list[dict] = []  # per task, its first_seen detectors' first rows
        submitted = 0

        def result(i: int) -> TaskResult:
            nonlocal submitted
            while submitted < len(parts) and submitted < i + ahead:
                refs[submitted] = remote.remote(task, shared, parts[submitted], cwd, route, n)
                submitted += 1
            if not n:
                return ray.get(refs.pop(i))
            head, *more = refs.pop(i)
            got = ray.get(head)
            pieces.append(more)
            firsts.append(got.detectors.pop("first", {}))
            return got

        try:
            stats = merge_all(parts, result, sink, hunter, runner, on_bytes)
        finally:
            for ref in refs.values():  # a failure in the driver: the tasks still out are of no use
                ray.cancel(ref[0] if isinstance(ref, list) else ref, force=True)
        if n:
            _detect(ray, runner, route, firsts, pieces, n, max_retries, trace)
        if hunter.ruleset.correlations and "correlate" not in vars(hunter):  # not a job's (its state: the driver)
            _correlate(ray, hunter, plan, cwd, min(cpus, MAX_PARTITIONS), max_retries, trace)
    finally:
        if mine:
            ray.shutdown()
    sink.close()
    return stats


def _correlations(index: int, rules_key: tuple, cwd: str, columns: list[str], piece: dict):
    """A correlation partition's Ray task, its rule paths read from the driver's working directory."""
    from soc.distributed.shuffle import run_correlations

    if cwd != os.getcwd():
        os.chdir(cwd)
    return run_correlations(index, rules_key, columns, piece)


def _correlate(ray, hunter, plan: HuntPlan, cwd: str, n: int, max_retries: int, trace: list | None) -> None:
    """The Sigma correlations on ``n`` partitions by their group-by keys (``shuffle.correlation_pieces``), their
    alerts what ``hunter.correlate`` gives then; left to the driver when they cannot be cut, or when a partition
    fails (the driver's own evaluation reports it as one process does)."""
    from soc.distributed import shuffle

    matches = hunter.matches()
    pieces = shuffle.correlation_pieces(hunter.ruleset.correlations, matches, n)
    if pieces is None:
        return
    remote = ray.remote(max_retries=max_retries, retry_exceptions=False, scheduling_strategy="SPREAD")(_correlations)
    try:
        results = ray.get([remote.remote(i, plan.rules_key, cwd, matches.columns, piece)
                           for i, piece in enumerate(pieces)])
    except ray.exceptions.RayTaskError:
        return
    found = shuffle.combine_correlations(hunter.ruleset.correlations, results)
    hunter.correlate = lambda: found
    if trace is not None:
        trace.extend(results)


def _detect(ray, runner, route: dict, firsts: list[dict], pieces: list[list], n: int, max_retries: int,
            trace: list | None) -> None:
    """The detector partitions, one Ray task each, fed their piece of every task's rows; their hits into
    ``runner.done`` (``shuffle.combine``), in partition order whatever order they end in."""
    from soc.distributed import shuffle

    jobs = shuffle.jobs(runner, route, firsts, n, trace is not None)
    remote = ray.remote(max_retries=max_retries, retry_exceptions=False,
                        scheduling_strategy="SPREAD")(shuffle.run_partition)
    results = ray.get([remote.remote(job, *(p[i] for p in pieces)) for i, job in enumerate(jobs)])
    shuffle.combine(runner, results)
    if trace is not None:
        trace.extend(results)
