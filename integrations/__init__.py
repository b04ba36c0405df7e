"""Linkage with partner hotlines (110, 12345, 12355, 12368): the API side.

* ``config``: partners as configuration (``partners.example.yaml``), secrets in the runtime dir;
* ``signing``: HMAC-SHA256 request signing and checks (sans-I/O);
* ``schemas`` / ``api.yml``: the pushed work order and the answers, for code and for partners;
* ``service``: store pushed orders (idempotent, replay-proof), status updates, dispatch;
* ``http``: ``setup(app, service)``, the routes and ``/api/openapi.json``;
* ``delivery``: the outbox worker (signed POSTs, backoff with jitter, dead letters);
* ``sms``: SMS notices to callers (file back end for development, HTTP gateway);
* ``cli``: ``hotline partners`` (list, secret, dead-letters list|replay).

The SIP trunk side (calls transferred in and out) reads ``config.Partner.sip`` and lives with
the ACD.
"""
