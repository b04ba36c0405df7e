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

The running part builds on them (every transition returns a ``Log`` description to append):

- ``workorders.models``: the tables (orders, history, daily number counter; migration 0007).
- ``workorders.protect``: the caller's number sealed at rest (AES-GCM, key in the secrets).
- ``workorders.service``: drafts from the event bus, updates from the transcript, the
  lifecycle for people, SLA warnings, the IVR progress query (menu 9).
- ``workorders.http``: the work-order API and the party archive route.
- ``workorders.archive``: the party archive (当事人法律服务档案) by caller key.
"""
