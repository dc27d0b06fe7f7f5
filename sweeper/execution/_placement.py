"""Trials that no node can hold, and the warning the driver repeats while they wait.

Ray keeps a trial that fits on no live node pending, in silence, for as long as the sweep runs.
A local Ray never grows, so there such a sweep is refused before it starts; a cluster's
autoscaler may yet add a node that fits, so there the sweep runs, and :class:`PlacementWatch`
warns at its start and every progress interval while the trials wait, with what the cluster
has, until a node that can hold one has joined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "PlacementWatch",
    "cluster_totals",
    "gangs_that_fit",
    "live_nodes",
    "waiting_warning",
    "why_unplaceable",
]

# One node's resources as ray.nodes() gives them: CPU, GPU, memory (bytes), custom ones.
Resources = Mapping[str, float]

_FIELDS = {"CPU": "cpus", "GPU": "gpus", "memory": "memory"}


def live_nodes() -> list[Resources]:
    """The resources of each live node of the Ray cluster (one ``ray.nodes()`` call)."""
    import ray

    return [node.get("Resources") or {} for node in ray.nodes() if node.get("Alive")]


def why_unplaceable(
    nodes: Sequence[Resources],
    cpus: float,
    gpus: float,
    memory: int | None,
    learners: int = 1,
    pack: bool = True,
) -> str | None:
    """Why ``nodes`` could not hold a trial that asks for this much (``None``: they can).

    ``cpus``, ``gpus`` and ``memory`` are one learner's. With ``pack`` every learner must fit
    on one node; else each on some node, and the nodes together must hold them all (Ray's
    ``SPREAD`` packs several onto a node when it has to). Without nodes (none known yet)
    there is nothing to say.
    """
    if not nodes:
        return None
    together = learners if pack else 1
    asked = {
        "CPU": cpus * together,
        "GPU": gpus * together,
        "memory": float(memory or 0) * together,
    }
    gang = f" for the trial's {learners} learners on one node" if together > 1 else ""
    for key, amount in asked.items():
        if amount > 0 and not any(node.get(key, 0.0) >= amount for node in nodes):
            largest = max(node.get(key, 0.0) for node in nodes)
            shown = f"{_gib(largest)} GiB" if key == "memory" else f"{largest:g}"
            return (
                f"resources.{_FIELDS[key]}{gang}: the largest of {len(nodes)} node(s) has {shown}"
            )
    if learners > 1 and not pack:
        per = {k: v for k, v in asked.items() if v > 0}
        slots = sum(
            min((int(node.get(k, 0.0) // v) for k, v in per.items()), default=learners)
            for node in nodes
        )
        if slots < learners:
            return (
                f"resources.learners: the {len(nodes)} node(s) hold {slots} of the trial's "
                f"{learners} learners"
            )
    return None


def gangs_that_fit(
    nodes: Sequence[Resources], cpus: float, gpus: float, memory: int | None, learners: int
) -> int:
    """How many trials of ``learners`` learners (each asking this much) the nodes hold at once.

    Counted in learners, node by node (a packed trial may not split over nodes; this is an
    upper bound for it, which Ray's placement groups then respect).
    """
    per = {"CPU": cpus, "GPU": gpus, "memory": float(memory or 0)}
    per = {k: v for k, v in per.items() if v > 0}
    slots = sum(min(int(node.get(k, 0.0) // v) for k, v in per.items()) for node in nodes)
    return slots // max(1, learners)


def cluster_totals(nodes: Sequence[Resources]) -> str:
    """What the nodes have together, e.g. ``2 nodes, 4 CPUs, 0 GPUs, 6.4 GiB memory``."""
    cpus = sum(node.get("CPU", 0.0) for node in nodes)
    gpus = sum(node.get("GPU", 0.0) for node in nodes)
    memory = sum(node.get("memory", 0.0) for node in nodes)
    return (
        f"{_count(len(nodes), 'node')}, {_count(cpus, 'CPU')}, {_count(gpus, 'GPU')}, "
        f"{_gib(memory)} GiB memory"
    )


def waiting_warning(why: str, totals: str, waiting: int | None = None) -> str:
    """The one line said while no node can hold a trial; ``waiting``: how many wait, if known."""
    who = "trials" if waiting is None else _count(waiting, "trial")
    return (
        f"warning: {who} waiting: no node can hold a trial ({why}); cluster has {totals}; "
        "add a node that has it or ask for less"
    )


class PlacementWatch:
    """Looks, on the driver, whether a live node of the cluster can hold one of the sweep's
    trials; called at the start and every progress interval, one ``ray.nodes()`` a call.

    Args:
        cpus: CPUs a trial (each of its learners) asks for.
        gpus: GPUs a trial (each of its learners) asks for.
        memory: Bytes of memory a trial (each learner) asks for (``None``: none asked).
        nodes: Returns the live nodes' resources (:func:`live_nodes`).
        learners: The trial's learners.
        pack: Whether they must all be on one node (``resources.placement: pack``).
    """

    def __init__(
        self,
        cpus: float,
        gpus: float,
        memory: int | None,
        nodes: Callable[[], Sequence[Resources]] = live_nodes,
        learners: int = 1,
        pack: bool = True,
    ) -> None:
        self.asked = (cpus, gpus, memory, learners, pack)
        self.nodes = nodes
        self.warned = False  # the last look warned

    def __call__(self, waiting: int | None = None) -> str | None:
        """The line to say now, if any: a warning while no node can hold a trial and trials
        wait (``waiting``: how many, if known), a note once a node that can has joined."""
        try:
            nodes = self.nodes()
        except Exception:
            return None  # Ray going down with the session: nothing to tell
        why = why_unplaceable(nodes, *self.asked)
        if why is not None and waiting != 0:
            self.warned = True
            return waiting_warning(why, cluster_totals(nodes), waiting)
        joined = self.warned and why is None  # not when nothing waits any more
        self.warned = False
        if not joined:
            return None
        return (
            f"note: a node that can hold a trial has joined (cluster has "
            f"{cluster_totals(nodes)}); waiting trials can start"
        )


def _count(amount: float, unit: str) -> str:
    return f"{amount:g} {unit}" + ("" if amount == 1 else "s")


def _gib(amount: float) -> str:
    gib = amount / 2**30
    return f"{gib:.3g}" if gib < 1000 else f"{gib:.0f}"
