"""Configuration: one YAML file plus ``HOTLINE_*`` environment variables, validated at start.

The file is the one given on the command line, else ``$HOTLINE_CONFIG``, else
``<runtime_dir>/hotline.yaml`` when it exists. Environment variables override the file:
``HOTLINE_ASTERISK__SIP_PORT=5070`` sets ``asterisk.sip_port``. Unknown keys are errors, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from kpi.settings import KpiSettings  # targets and thresholds, defined beside the formulas

Port = int


class ConfigError(Exception):
    """A configuration problem, worded for the operator: names the key and what is wrong."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AsteriskSettings(_Section):
    mode: Literal["auto", "system", "debian-root"] = Field(
        "auto", description="auto: a system Asterisk >= 20 if present, else the Debian root"
    )
    root_dir: Path | None = Field(
        None, description="Debian root; default <runtime_dir>/asterisk-root"
    )
    instance: str = Field("main", pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    bind: str = "127.0.0.1"
    sip_port: Port = Field(5060, ge=1, le=65535)
    http_port: Port = Field(8088, ge=1, le=65535)
    rtp_start: Port = Field(10000, ge=1024, le=65535)
    rtp_end: Port = Field(10999, ge=1024, le=65535)
    app_name: str = Field("hotline", pattern=r"^[A-Za-z0-9_-]+$")
    trunk_addresses: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32"],
        description="carrier trunk: calls from these addresses are accepted without registration",
    )
    service_numbers: list[str] = Field(default_factory=lambda: ["12348"])
    carrier_contact: str | None = Field(
        None,
        description="where calls to callers go out (callbacks), e.g. sip:127.0.0.1:5062: "
        "an aor for the carrier trunk",
    )

    @field_validator("bind")
    @classmethod
    def _ip(cls, value: str) -> str:
        ipaddress.ip_address(value)
        return value

    @field_validator("carrier_contact")
    @classmethod
    def _sip_uri(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"sips?:[^\s;,]+", value):
            raise ValueError(
                f"carrier_contact must be a SIP URI like sip:127.0.0.1:5062: {value!r}"
            )
        return value

    @field_validator("trunk_addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(v, strict=False)) for v in value]

    @model_validator(mode="after")
    def _rtp_range(self) -> AsteriskSettings:
        if self.rtp_end <= self.rtp_start:
            raise ValueError("rtp_end must be greater than rtp_start")
        return self


class DatabaseSettings(_Section):
    url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in the runtime dir")


class ServiceSettings(_Section):
    bind: str = "127.0.0.1"
    port: Port = Field(8080, ge=1, le=65535)

    @field_validator("bind")
    @classmethod
    def _ip(cls, value: str) -> str:
        ipaddress.ip_address(value)
        return value


class PromptSettings(_Section):
    language: Literal["zh", "en"] = "zh"
    recorded_dir: Path | None = Field(
        None, description="recorded prompts (<lang>/<id>.wav) that replace generated ones"
    )
    cache_dir: Path | None = Field(
        None, description="cache of spoken prompts; default <runtime_dir>/prompt-cache"
    )


class IvrSettings(_Section):
    flow_file: Path | None = Field(None, description="IVR flow; default ivr/flows/default.yaml")
    clock: datetime | None = Field(
        None, description="fixed time the IVR sees (drills and tests of the after-hours path)"
    )
    special_group_numbers: list[str] = Field(
        default_factory=list, description="绿色通道 callers (elderly, disabled, ...): priority"
    )
    blocked_numbers: list[str] = Field(default_factory=list, description="numbers refused")

    @field_validator("clock")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-10-01T10:00:00+08:00")
        return value


class AcdSettings(_Section):
    """Defaults for every queue; ``queues`` overrides fields per queue (acd.config.QueueConfig)."""

    ring_timeout_s: float = Field(15.0, gt=0)
    wrap_up_s: float = Field(10.0, ge=0, description="话后处理 seconds after each call")
    announce_interval_s: float | None = Field(45.0, gt=0)
    max_wait_s: float | None = Field(300.0, gt=0, description="then a message or callback")
    callback_offer_after_s: float | None = Field(60.0, gt=0)
    overflow_to: str | None = Field("operator", description="queue that takes overflow")
    overflow_after_s: float = Field(90.0, gt=0)
    queues: dict[str, dict[str, Any]] = Field(default_factory=dict)
    callback_dial: str | None = Field(
        None,
        description="ARI endpoint that dials a caller back, with {number}; default "
        "PJSIP/{number}@carrier when asterisk.carrier_contact is set",
    )
    transfer_trunk: str | None = Field(
        None, description="PJSIP endpoint for transfers to numbers (12345, 110); none = refused"
    )


class SpeechSettings(_Section):
    model_path: Path | None = Field(None, description="Vosk model directory")
    workers: int = Field(1, ge=1, description="recogniser processes (each loads the model once)")
    live_streams: int = Field(
        4,
        ge=0,
        description="live recogniser streams at once, one per party (a call with caller and "
        "lawyer transcribed takes two; about 4 streams per core with a small model); calls "
        "without one, and all when 0, are transcribed from the recording after the call",
    )
    nice: int = Field(
        10,
        ge=0,
        le=19,
        description="CPU niceness of the recogniser processes: call audio in Asterisk and "
        "the service come first, transcription uses the CPU they leave",
    )
    record_calls: bool = Field(
        True,
        description="record connected calls (a 12348 hotline records every call; false only "
        "to measure what recording costs in bench/load.py)",
    )


class WorkOrderSettings(_Section):
    callback_within_h: float = Field(
        24.0,
        gt=0,
        le=24 * 30,
        description="hours within which a booked callback or voice message must be called "
        "back (回拨时限); the SLA warnings count from it",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HOTLINE_", env_nested_delimiter="__", extra="forbid"
    )

    runtime_dir: Path = Path(".hotline")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    asterisk: AsteriskSettings = Field(default_factory=AsteriskSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    ivr: IvrSettings = Field(default_factory=IvrSettings)
    acd: AcdSettings = Field(default_factory=AcdSettings)
    kpi: KpiSettings = Field(default_factory=KpiSettings)
    speech: SpeechSettings = Field(default_factory=SpeechSettings)
    workorders: WorkOrderSettings = Field(default_factory=WorkOrderSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first, then the file's values (passed as init kwargs).
        return env_settings, init_settings

    # Derived paths -------------------------------------------------------------------
    @property
    def runtime_path(self) -> Path:
        return self.runtime_dir.resolve()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.runtime_path / 'hotline.db'}"

    @property
    def prompt_cache(self) -> Path:
        return (self.prompts.cache_dir or self.runtime_path / "prompt-cache").resolve()

    @property
    def asterisk_root(self) -> Path:
        return (self.asterisk.root_dir or self.runtime_path / "asterisk-root").resolve()


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of keys")
    return data


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        problem = item["msg"]
        if item["type"] == "extra_forbidden":
            problem = "unknown key"
        lines.append(f"  {key}: {problem} (got {item.get('input')!r})")
    return "\n".join(lines)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load and validate the configuration; raise ConfigError with a readable message."""
    path = config_file or (
        Path(os.environ["HOTLINE_CONFIG"]) if "HOTLINE_CONFIG" in os.environ else None
    )
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_file(path)
    else:
        runtime = Path(os.environ.get("HOTLINE_RUNTIME_DIR", ".hotline"))
        default = runtime / "hotline.yaml"
        if default.exists():
            path = default
            data = _read_file(default)
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(path) if path else "environment")) from exc
