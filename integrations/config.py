"""Partners as configuration: who may push work orders to us, where we deliver, how to sign.

A partner hotline (110, 12345, 12355, 12368, ...) is a block of YAML, not code. The partners file
is ``<runtime_dir>/partners.yaml`` when it exists, else the shipped
``integrations/partners.example.yaml`` (four example partners that can do nothing until an
operator hands them their secret). Unknown keys are errors, as in ``hotline.config``.

Secrets are never in the partners file: each partner names a ``secret_ref``, and the shared
HMAC secret for that reference lives in the runtime secrets file (``<runtime_dir>/secrets.yaml``,
mode 0600) under ``partner_secrets``. A missing one is generated the first time it is needed and
then kept; ``hotline partners secret ID`` prints it for the operator to give to the partner.

The SIP trunk block (addresses, digest user, header names, queue, priority, fallback) drives
calls transferred in and out (``integrations.trunks``: what the trunk means; ``asterisk_conf``
renders its PJSIP endpoint; ``acd.adapter`` routes the calls). The digest password of a trunk
with a ``username`` is generated into the runtime secrets file (``partner_sip_secrets``), like
the HMAC secrets, and never written in the partners file.

The ``emergency:`` block configures the emergency path by speech (``integrations.emergency``):
the words that, heard from a caller in a live call, put a "transfer to 110" banner on the
seat's desk, the harmless phrases that contain one, and the partner the banner offers.
"""

from __future__ import annotations

import ipaddress
import secrets as _secrets
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hotline import secrets as secrets_file
from hotline.config import ConfigError
from integrations.emergency import DEFAULT_IGNORE, DEFAULT_WORDS, normalise

PACKAGE_DIR = Path(__file__).resolve().parent
EXAMPLE_PARTNERS_FILE = PACKAGE_DIR / "partners.example.yaml"
PARTNERS_FILE = "partners.yaml"
# Key inside the runtime secrets file; hotline.secrets keeps keys it does not know.
SECRETS_KEY = "partner_secrets"

PartnerId = str
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A SIP header name as it may appear in PJSIP_HEADER(read,NAME): a token, no commas or brackets.
_HEADER_NAME = r"^[A-Za-z][A-Za-z0-9-]{0,63}$"
# A PJSIP endpoint / auth user name: also a pjsip.conf section name.
_SIP_USER = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class SipHeaders(_Section):
    """SIP header names carrying a transferred call's context (both directions)."""

    case_id: str = Field("X-Partner-Case-Id", pattern=_HEADER_NAME)
    original_caller: str = Field("X-Original-Caller", pattern=_HEADER_NAME)
    summary: str = Field("X-Case-Summary", pattern=_HEADER_NAME)
    work_order_id: str = Field("X-Hotline-Work-Order", pattern=_HEADER_NAME)


class SipTrunk(_Section):
    """How calls from and to this partner are recognised and routed (used by the ACD side)."""

    addresses: list[str] = Field(default_factory=list, description="networks calls come from")
    username: str | None = Field(
        None,
        pattern=_SIP_USER,
        description="digest user: the trunk authenticates (password in the secrets file) and "
        "its From user names it",
    )
    transfer_uri: str | None = Field(None, description="where a seat's transfer out goes")
    headers: SipHeaders = Field(default_factory=SipHeaders)
    queue: str | None = Field(None, description="queue transferred-in calls join (skip the IVR)")
    priority: int = Field(0, ge=0, le=100)
    answer_timeout_s: float = Field(60.0, gt=0)
    fallback: Literal["overflow", "callback", "back_to_partner"] = "callback"
    overflow_queue: str | None = Field(None, description="where fallback: overflow sends the call")

    @field_validator("addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(v, strict=False)) for v in value]

    @field_validator("transfer_uri")
    @classmethod
    def _sip_uri(cls, value: str | None) -> str | None:
        # Goes into a dial string (PJSIP/endpoint/URI): no spaces, commas or dial options.
        if value is not None and (
            not value.startswith(("sip:", "sips:")) or any(c in value for c in " ,()|&\t\n")
        ):
            raise ValueError("give a SIP URI like sip:12345@192.0.2.20")
        return value

    @model_validator(mode="after")
    def _fallback_target(self) -> SipTrunk:
        if self.fallback == "overflow" and not self.overflow_queue:
            raise ValueError("fallback: overflow needs overflow_queue")
        if self.fallback == "overflow" and self.overflow_queue == self.queue:
            raise ValueError("overflow_queue must differ from queue")
        return self

    @property
    def enabled(self) -> bool:
        """Calls can come in on this trunk (by source address or digest user)."""
        return bool(self.addresses or self.username)


class Partner(_Section):
    id: PartnerId = Field(pattern=_ID_PATTERN, description="the partner's number, e.g. 12345")
    name: str = Field(min_length=1, max_length=64, description="shown to people, Chinese first")
    secret_ref: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="default: partner_<id>"
    )
    inbound: bool = Field(True, description="may push work orders to us")
    outbound_url: str | None = Field(None, description="where we POST status updates and orders")
    outbound_timeout_s: float = Field(10.0, gt=0, le=120)
    sip: SipTrunk = Field(default_factory=SipTrunk)

    @field_validator("outbound_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("give an http:// or https:// URL with a host")
        return value

    @property
    def secret_key(self) -> str:
        return self.secret_ref or f"partner_{self.id}"

    @property
    def endpoint(self) -> str:
        """The PJSIP endpoint of this partner's trunk. A digest user is identified by its From
        user (``endpoint_identifier_order = username,ip``), so then the endpoint is that name."""
        return self.sip.username or f"partner-{self.id}"


class DeliverySettings(_Section):
    """Outbound retries: exponential backoff with jitter, then a dead letter."""

    max_attempts: int = Field(8, ge=1, le=100)
    initial_delay_s: float = Field(5.0, gt=0)
    max_delay_s: float = Field(3600.0, gt=0)
    poll_interval_s: float = Field(5.0, gt=0, description="how often due deliveries are looked for")
    lease_s: float = Field(120.0, gt=0, description="a claimed delivery is retried after this")
    concurrency: int = Field(4, ge=1, le=64)


class SmsSettings(_Section):
    backend: Literal["file", "http"] = "file"
    file: Path | None = Field(None, description="file back end; default <runtime_dir>/sms.jsonl")
    url: str | None = Field(None, description="HTTP gateway URL (http back end)")
    method: Literal["POST", "PUT"] = "POST"
    content_type: str = "application/json"
    headers: dict[str, str] = Field(default_factory=dict)
    # Jinja2 (sandboxed): to, text, kind, sender. ``tojson`` quotes safely for JSON bodies.
    body_template: str = '{"to": {{ to|tojson }}, "text": {{ text|tojson }}}'
    sender: str = "12348"
    signature: str = "【12348法律服务热线】"
    timeout_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _url_for_http(self) -> SmsSettings:
        if self.backend == "http" and not self.url:
            raise ValueError("the http SMS back end needs a url")
        return self


class EmergencySettings(_Section):
    """The emergency path by speech (README "110/12345 linkage", ``integrations.emergency``)."""

    enabled: bool = True
    words: list[str] = Field(
        default_factory=lambda: list(DEFAULT_WORDS),
        description="heard from the caller (spaces and punctuation do not matter)",
    )
    ignore: list[str] = Field(
        default_factory=lambda: list(DEFAULT_IGNORE),
        description="harmless phrases that contain a word (打我电话)",
    )
    partner: PartnerId = Field("110", pattern=_ID_PATTERN, description="whom the seat may call")

    @field_validator("words", "ignore")
    @classmethod
    def _phrases(cls, value: list[str]) -> list[str]:
        if len(value) > 500:
            raise ValueError("at most 500 phrases")
        seen: dict[str, str] = {}
        for phrase in value:
            key = normalise(phrase)
            if not key:
                raise ValueError(f"{phrase!r} has no letters (spaces and punctuation are ignored)")
            if len(key) > 32:
                raise ValueError(f"{phrase!r} is longer than 32 characters")
            if key in seen:
                raise ValueError(f"{phrase!r} is the same as {seen[key]!r}")
            seen[key] = phrase
        return value

    @model_validator(mode="after")
    def _some_words(self) -> EmergencySettings:
        if self.enabled and not self.words:
            raise ValueError("give at least one word, or enabled: false")
        return self


class IntegrationsConfig(_Section):
    our_id: str = Field("12348", pattern=_ID_PATTERN, description="how we name ourselves")
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=1 << 20)
    clock_skew_s: int = Field(300, ge=5, le=3600)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    partners: list[Partner] = Field(default_factory=list)
    emergency: EmergencySettings = Field(default_factory=EmergencySettings)

    @model_validator(mode="after")
    def _unique(self) -> IntegrationsConfig:
        seen: set[str] = set()
        endpoints: set[str] = set()
        for partner in self.partners:
            if partner.id in seen:
                raise ValueError(f"partner {partner.id} is configured twice")
            seen.add(partner.id)
            if partner.sip.enabled and partner.endpoint in endpoints:
                raise ValueError(f"partner {partner.id}: SIP user {partner.endpoint} is taken")
            endpoints.add(partner.endpoint)
        # Only a block the operator wrote is held to it: a partners file without 110 and
        # without an emergency block keeps working (its desk offers number:110 the usual way).
        target = self.emergency.partner
        written = "emergency" in self.model_fields_set
        if written and self.emergency.enabled and self.partners and target not in seen:
            raise ValueError(
                f"emergency.partner {target} is not a configured partner "
                f"(configured: {', '.join(sorted(seen))})"
            )
        return self

    def partner(self, partner_id: str) -> Partner | None:
        for partner in self.partners:
            if partner.id == partner_id:
                return partner
        return None


def parse_config(data: dict[str, Any], source: str = "partners") -> IntegrationsConfig:
    try:
        return IntegrationsConfig(**data)
    except ValidationError as exc:
        lines = [f"invalid partner configuration ({source}):"]
        for item in exc.errors():
            key = ".".join(str(p) for p in item["loc"]) or "(top level)"
            problem = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
            lines.append(f"  {key}: {problem} (got {item.get('input')!r})")
        raise ConfigError("\n".join(lines)) from exc


def load_config(path: Path) -> IntegrationsConfig:
    """Read and validate a partners file; raise ``ConfigError`` naming the key that is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"partners file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"partners file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"partners file {path}: the top level must be a mapping")
    return parse_config(data, str(path))


def config_path(runtime_dir: Path) -> Path:
    """The runtime partners file when it exists, else the shipped example."""
    own = runtime_dir / PARTNERS_FILE
    return own if own.exists() else EXAMPLE_PARTNERS_FILE


def load_for_runtime(runtime_dir: Path) -> IntegrationsConfig:
    return load_config(config_path(runtime_dir))


def partner_secrets(runtime_dir: Path, partners: list[Partner]) -> dict[PartnerId, bytes]:
    """Each partner's shared HMAC secret, generating (and keeping) the missing ones."""
    with secrets_file.edit(runtime_dir) as data:
        stored = data.get(SECRETS_KEY)
        if not isinstance(stored, dict):
            stored = {}
        for partner in partners:
            if not stored.get(partner.secret_key):
                stored[partner.secret_key] = _secrets.token_urlsafe(32)
        data[SECRETS_KEY] = stored
        return {p.id: str(stored[p.secret_key]).encode() for p in partners}
