"""Work orders (工单): one per answered call, voice message and callback request.

This package owns the pure parts of the work-order system, with no database, no network and no
Asterisk:

- ``workorders.lifecycle``: the state machine (draft → submitted → dispatched → claimed →
  in progress → resolved → reviewed → closed, or reopened) as tables, who may do what by role,
  the SLA table (due time per legal topic) and the near-due / overdue warnings (预警).
- ``workorders.classify``: the legal topic of a request from its transcript and IVR choice, with
  a confidence and the evidence (matched phrases); trained on ``data/labelled.yaml``.
- ``workorders.extract``: phone numbers, amounts, dates and identity-card numbers (masked only)
  found in a transcript.
- ``workorders.summary``: a short extractive summary (about 80 characters) for the order list.

Storage, the event-log writer and the HTTP API live elsewhere: they call these functions and
persist what they return (every transition returns a ``Log`` description to append).
"""
