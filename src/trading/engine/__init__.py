"""The trading engine, as composed parts with explicit interfaces (no mixins):

- ``worker.py``  the composition root and the clock driver: feed batches → one-second ticks
- ``bars.py``    the bar pipeline: one builder per bar size, the strategies each feeds
- ``decide.py``  the decision step: guarded strategy steps, decision journal, targets → router
- ``duties.py``  periodic duties: kill switch, forced flattening, follow-ups, expiry, snapshots
- ``lifecycle.py`` start-up (restore, reconcile, "started") and shutdown (drain, "stopped")
- ``state.py``   what the parts share while a run goes (market, checkpoint, router), and the
  journal recorder (buffered in a backtest); ``result.py`` the run's result
- ``sync.py``    the synchronous drive's primitives (``run_now``, the ready queue ``Soon``): a
  backtest whose parts never wait runs without an event-loop round trip per tick

Also here: ``session.py`` (builds a run from settings and options: what ``arena trade``,
``arena backtest`` and the demo share), ``bar_session.py`` and ``bar_drive.py`` (backtests over
klines), ``restore.py`` (a restart rebuilds books and orders from the journal), ``runner.py``
(one strategy's warm-up and guarded hook). The order router and its order ledger
(``trading/execution/``), the risk manager and the strategies are the parts these drive.
"""

from cryptoarena.trading.engine.result import WorkerResult, family
from cryptoarena.trading.engine.worker import Worker

__all__ = ["Worker", "WorkerResult", "family"]
