"""The same hunt on a Ray cluster (``soc hunt --ray [ADDRESS]``, ``HuntRequest.ray``; the ``soc[ray]`` extra).

The inputs are cut in the partitions of ``soc.distributed.task`` (files, batches of small EVTX files, line-aligned
byte ranges of a large Windows JSON file), each one a Ray task running ``run_task``, the same pure function the
local worker processes run. The driver merges the results in the tasks' order with the local hunt's own merge
(``soc.distributed.local.merge_all``): the matches into its Hunter (correlation at the end), the detector rows into
its DetectorRunner, dead letters and inputs' ends into its sink. So the result is the local hunt's, whatever the
number of nodes, and a task that Ray runs again (its worker died: ``max_retries``) gives the same result once.

Not distributed yet: the detectors and the Sigma correlations run in the driver, over the rows the tasks send it
(issue 22's shuffle of detector rows by entity key to detector partitions is still to be done); the alerts are
built and delivered by the driver as in a local hunt. Inputs must be paths that every node sees at the same place
(a shared filesystem; relative ones are read from the driver's working directory; not standard input), and every
node needs soc installed, the same version as the driver's (its rules and parsers come with it).

``auto`` joins the cluster of ``RAY_ADDRESS`` or a running local one, else starts a local one; ``ray://host:10001``
is a remote cluster (Ray Client). A hunt leaves Ray as it found it: connected by the caller, it stays connected;
connected here, it is shut down at the end.

Only this module imports Ray, and only when asked.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from soc.distributed.task import HuntPlan, Partition, TaskResult

MAX_RETRIES = 3  # runs of a task whose worker died (Ray's own default for tasks)
AHEAD = 2  # tasks submitted ahead per CPU of the cluster: results wait in the object store, not all at once


def _task(plan: HuntPlan, part: Partition, cwd: str | None = None) -> TaskResult:
    """A Ray task: one partition (``run_task``) read from the driver's working directory ``cwd`` (relative paths
    name the same files as in the driver, and are recorded as it gives them), without EVTX processes of its own
    (Ray gives the parallelism)."""
    os.environ.setdefault("SOC_EVTX_PROCESSES", "1")
    from soc.distributed.task import run_task

    if cwd is not None and cwd != os.getcwd():
        os.chdir(cwd)
    return run_task(plan, part)


def connect(address: str) -> bool:
    """Connect to the cluster at ``address`` (``auto``: as ``ray.init()`` finds or starts one); False if this
    process was connected already (to whatever cluster the caller chose)."""
    import ray

    if ray.is_initialized():
        return False
    ray.init(address=None if address == "auto" else address, include_dashboard=False, logging_level="WARNING",
             configure_logging=True)
    return True


def executor(address: str, rules, placeholders: str | None, task: Callable | None = None,
             max_retries: int = MAX_RETRIES):
    """A ``soc.hunt`` executor that runs the hunt's tasks on the Ray cluster at ``address``. ``task``: the remote
    function's body (default ``run_task``; a test's may fail on purpose). A ``HuntError`` if Ray is not installed."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        from soc.hunt import HuntError

        raise HuntError("--ray needs Ray: pip install 'soc[ray]'")

    def run(sources, stages, on_bytes):
        from soc.distributed.task import HuntPlan

        specs = None if stages.runner is None else tuple(stages.runner.specs)
        plan = HuntPlan(tuple(map(str, rules)), placeholders, specs, stages.options)
        return hunt(address, plan, sources, stages.sink, stages.hunter, stages.runner, on_bytes,
                    task or _task, max_retries)

    return run


def hunt(address: str, plan: HuntPlan, sources, sink, hunter, runner, on_bytes=None, task: Callable = _task,
         max_retries: int = MAX_RETRIES) -> list:
    """Hunt ``sources`` on Ray into ``hunter``, ``runner`` (None: no detectors) and ``sink`` (closed at the end),
    as ``soc.distributed.local.hunt`` does with processes; returns the inputs' stats."""
    import ray

    from soc.distributed.local import merge_all
    from soc.distributed.task import RAY_SPLIT_ENGINES, partitions

    if any(s.path == "-" for s in sources):
        from soc.hunt import HuntError

        raise HuntError("--ray reads paths that every node sees: standard input cannot be hunted on Ray")
    parts = partitions(sources, plan.options, engines=RAY_SPLIT_ENGINES)
    cwd = os.getcwd()
    mine = connect(address)
    try:
        # SPREAD: the tasks over every node (each reads its own inputs), not first the driver's node until it is full
        remote = ray.remote(max_retries=max_retries, retry_exceptions=False, scheduling_strategy="SPREAD")(task)
        shared = ray.put(plan)
        ahead = max(int(ray.cluster_resources().get("CPU", 1)) * AHEAD, 2)
        refs: dict[int, ray.ObjectRef] = {}
        submitted = 0

        def result(i: int) -> TaskResult:
            nonlocal submitted
            while submitted < len(parts) and submitted < i + ahead:
                refs[submitted] = remote.remote(shared, parts[submitted], cwd)
                submitted += 1
            return ray.get(refs.pop(i))

        try:
            stats = merge_all(parts, result, sink, hunter, runner, on_bytes)
        finally:
            for ref in refs.values():  # a failure in the driver: the tasks still out are of no use
                ray.cancel(ref, force=True)
    finally:
        if mine:
            ray.shutdown()
    sink.close()
    return stats
