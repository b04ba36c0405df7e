"""KPI settings: the definitions' thresholds, the targets the alerts watch, QA sampling.

One pydantic section, meant to sit in ``hotline.config.Settings`` as ``kpi``. Until it does,
:func:`kpi_settings` falls back to the defaults, so every KPI module reads its settings the
same way. Every report prints the thresholds it was computed with.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from kpi.formulas import DEFAULT_TZ, Thresholds


class KpiTargets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer_rate: float = Field(0.95, ge=0, le=1, description="接通率 target (year)")
    satisfaction: float = Field(0.90, ge=0, le=1, description="满意率 target (year)")
    service_level: float = Field(0.80, ge=0, le=1, description="share answered within T")
    longest_wait_s: float = Field(120.0, gt=0, description="alert when a caller waits longer")
    qa_share: float = Field(0.05, ge=0, le=1, description="质检率: share of answered calls")


class KpiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    short_abandon_s: float = Field(5.0, ge=0, description="abandons shorter are excluded")
    service_level_s: float = Field(15.0, gt=0, description="T of the service level")
    tz: str = DEFAULT_TZ
    targets: KpiTargets = Field(default_factory=KpiTargets)
    # Alerts: a rate is only judged once today has this many calls in it, and clears only when
    # it is back above target + hysteresis (no flapping around the line).
    alert_min_calls: int = Field(20, ge=1)
    alert_hysteresis: float = Field(0.01, ge=0, le=0.2)
    alert_webhook: HttpUrl | None = None
    qa_min_per_seat: int = Field(1, ge=0, description="at least this many per seat and period")
    live_interval_s: float = Field(5.0, gt=0, description="wallboard snapshot period")
    rollup_interval_s: float = Field(10.0, gt=0, description="rollup catch-up period")

    def thresholds(self) -> Thresholds:
        return Thresholds(self.short_abandon_s, self.service_level_s, self.tz)


def kpi_settings(settings: Any | None) -> KpiSettings:
    """The ``kpi`` section of the service settings, or the defaults when there is none."""
    section = getattr(settings, "kpi", None) if settings is not None else None
    if isinstance(section, KpiSettings):
        return section
    if isinstance(section, dict):
        return KpiSettings(**section)
    return KpiSettings()
