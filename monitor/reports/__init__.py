"""The manager's side of the method: period reports, backtests and limit recommendations over a source of events
(analyses.py), rendered as text tables, CSV or a self-contained HTML page, and recommended limits written out as a
policy directory."""
