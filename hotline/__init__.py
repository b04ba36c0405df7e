"""Core of the 12348 hotline: configuration, database, call-event log, event bus, ARI client,
Asterisk runtime, service wiring and the ``hotline`` command line.

Feature packages (``ivr``, ``acd``, ``recordings``, ``kpi``, ``integrations``, ``agent_desk``,
``sim``) build on this package; this package never imports them, except ``hotline.service``
and ``hotline.cli``, which wire them together.
"""

__version__ = "0.1.0"
