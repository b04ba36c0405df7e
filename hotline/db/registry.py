"""Every feature's tables on one metadata: for the schema check and Alembic's autogenerate.

The features own their models (``<feature>/models.py``); this module only imports them so that
``Base.metadata`` holds the whole schema. The service itself does not need it.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from hotline.db.models import Base

FEATURE_MODELS = (
    "acd.models",
    "recordings.models",
    "kpi.models",
    "agent_desk.models",
    "integrations.models",
    "workorders.models",
)


def all_metadata() -> MetaData:
    for module in FEATURE_MODELS:
        importlib.import_module(module)
    return Base.metadata
