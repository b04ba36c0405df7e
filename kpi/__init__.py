"""KPIs of the hotline: per-call facts (``facts``), the KPI formulas (``formulas``), queueing
models (``erlang``) and seat planning (``staffing``). Pure code: no database, no network."""
