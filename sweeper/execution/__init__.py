"""Running a sweep: the driver's side of Ray Tune, and the code that runs in the trials' actors.

On the driver: :mod:`._sweep` (a sweep from start to finish: its folder, MLflow parent run,
sessions, results), :mod:`._session` (one Tune run over what is left of the sweep),
:mod:`._extend` (an extension's session, and a new sweep's warm start),
:mod:`._plan` (what every trial shares, and the trials' names), :mod:`._ending` (a session's
results, state and MLflow summary, and the uploads left),
:mod:`._ray` (starting or joining Ray), :mod:`._stopping` (early stopping, budgets, stop
requests, Ctrl-C), :mod:`._recorder` (Tune's callback: trial states to the journal and MLflow),
:mod:`._phases` (trial phases reported from the actors), :mod:`._progress` and
:mod:`._console` (what the terminal shows), :mod:`._cluster` (the code shipped to a cluster).

In each trial's Ray actor: :mod:`._actor` (Tune's trainable, and one trial: its folder, log,
data staging, the adapter, checkpoints and results upload).
"""

from sweeper.execution._extend import extend
from sweeper.execution._sweep import SweepResult, resume, run, unfinished_sweep

__all__ = ["SweepResult", "extend", "resume", "run", "unfinished_sweep"]
