"""The offline side: building a reference profile from a development log (``baseline``),
replaying a historical log with its own time (``replay``, ``backtest``, ``report``), and the
simulated model of the ``demo``. The CLI imports these lazily, so the sidecar never loads them."""
