"""Rendering of the Asterisk configuration from ``asterisk_conf/*.j2``: pure, no I/O but reading
the templates.

Owns: the module list (which modules the hotline needs and which are merely useful), the seat
credential format, and the mapping from settings + secrets + instance directories to file
contents. It does not write files or know where Asterisk runs; ``runtime.py`` does that.

Templates use ``StrictUndefined``: a missing variable is a bug and fails the render instead of
writing an empty value into a config file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from hotline.config import AsteriskSettings
from hotline.secrets import Secrets

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "asterisk_conf"
SIP_REALM = "hotline"

# Without these the hotline cannot work; the render fails if one is missing.
REQUIRED_MODULES: tuple[str, ...] = (
    # configuration objects, timing, dialplan
    "res_sorcery_config.so",
    "res_sorcery_memory.so",
    "res_sorcery_astdb.so",
    "res_timing_timerfd.so",
    "pbx_config.so",
    "func_channel.so",
    "func_callerid.so",
    # SIP
    "res_pjproject.so",
    "res_pjsip.so",
    "res_pjsip_session.so",
    "res_pjsip_pubsub.so",
    "chan_pjsip.so",
    "res_pjsip_authenticator_digest.so",
    "res_pjsip_endpoint_identifier_user.so",
    "res_pjsip_endpoint_identifier_ip.so",
    "res_pjsip_registrar.so",
    "res_pjsip_sdp_rtp.so",
    "res_pjsip_nat.so",
    "res_pjsip_caller_id.so",
    "res_pjsip_dtmf_info.so",
    "res_pjsip_rfc3326.so",
    "res_pjsip_refer.so",
    # media transport
    "res_rtp_asterisk.so",
    "res_rtp_multicast.so",
    "chan_rtp.so",
    # ARI
    "res_http_websocket.so",
    "res_stasis.so",
    "res_stasis_answer.so",
    "res_stasis_device_state.so",
    "res_stasis_playback.so",
    "res_stasis_recording.so",
    "res_stasis_snoop.so",
    "app_stasis.so",
    "res_ari.so",
    "res_ari_model.so",
    "res_ari_applications.so",
    "res_ari_asterisk.so",
    "res_ari_bridges.so",
    "res_ari_channels.so",
    "res_ari_device_states.so",
    "res_ari_endpoints.so",
    "res_ari_events.so",
    "res_ari_playbacks.so",
    "res_ari_recordings.so",
    "res_ari_sounds.so",
    # bridges, recordings, media taps
    "bridge_simple.so",
    "bridge_softmix.so",
    "bridge_holding.so",
    "bridge_native_rtp.so",
    "chan_bridge_media.so",
    "res_audiosocket.so",
    "chan_audiosocket.so",
    # prompts and codecs
    "format_wav.so",
    "format_sln.so",
    "format_pcm.so",
    "codec_ulaw.so",
    "codec_alaw.so",
    "codec_resample.so",
    "res_musiconhold.so",
)

# Loaded when present: newer media transports, diagnostics, conveniences.
OPTIONAL_MODULES: tuple[str, ...] = (
    "chan_websocket.so",  # externalMedia over WebSocket (Asterisk 22.5+)
    "res_websocket_client.so",
    "res_ari_mailboxes.so",
    "res_stasis_mailbox.so",
    "res_pjsip_acl.so",
    "res_pjsip_header_funcs.so",
    "res_pjsip_logger.so",  # `pjsip set logger on` when debugging
    "res_pjsip_outbound_authenticator_digest.so",
    "res_pjsip_dlg_options.so",
    "func_pjsip_endpoint.so",
    "func_pjsip_aor.so",
    "func_pjsip_contact.so",
    "codec_a_mu.so",
    "bridge_builtin_features.so",
)

# pjsip.conf sections of our own that a seat name must not shadow.
RESERVED_SECTION_NAMES = frozenset(
    {"global", "system", "transport-udp", "carrier", "carrier-identify"}
)
_SEAT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
_SERVICE_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_PARTNER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_MOH_EXTENSIONS = {".wav": (), ".sln": (), ".ulaw": (), ".alaw": (), ".gsm": ("format_gsm.so",)}


class RenderError(Exception):
    """The configuration cannot be rendered; the message says what to fix."""


class MissingModulesError(RenderError):
    """Required Asterisk modules are not installed."""

    def __init__(self, missing: list[str], module_dir: str) -> None:
        self.missing = missing
        super().__init__(
            f"required Asterisk module(s) missing from {module_dir}: {', '.join(missing)} "
            "(the hotline needs them; install the package that provides them, e.g. "
            "asterisk-modules, or rebuild the Asterisk root)"
        )


@dataclass(frozen=True)
class SeatCredential:
    """A seat's SIP login as stored in pjsip.conf: the name and MD5("name:hotline:password")."""

    name: str
    md5_cred: str

    def __post_init__(self) -> None:
        if not _SEAT_NAME.match(self.name) or self.name in RESERVED_SECTION_NAMES:
            raise ValueError(f"invalid seat name {self.name!r}")
        if not _MD5_HEX.match(self.md5_cred):
            raise ValueError(f"seat {self.name}: md5_cred must be 32 lower-case hex digits")


def seat_credential(name: str, password: str) -> SeatCredential:
    """The credential for seat ``name`` with clear password ``password`` (realm "hotline")."""
    digest = hashlib.md5(f"{name}:{SIP_REALM}:{password}".encode(), usedforsecurity=False)
    return SeatCredential(name, digest.hexdigest())


@dataclass(frozen=True)
class PartnerTrunk:
    """A partner hotline's SIP trunk (110, 12345, ...) as pjsip.conf and the dialplan need it.

    Identified by source address (``addresses``) and/or by digest user (``endpoint`` is then the
    user name, matched against the From user, and ``md5_cred`` is MD5("user:hotline:password")).
    Calls from it go to the context ``from-partner-<partner_id>``."""

    partner_id: str
    name: str
    endpoint: str
    addresses: tuple[str, ...] = ()
    md5_cred: str | None = None

    def __post_init__(self) -> None:
        if not _SEAT_NAME.match(self.endpoint) or self.endpoint in RESERVED_SECTION_NAMES:
            raise ValueError(f"invalid partner trunk endpoint {self.endpoint!r}")
        if not _PARTNER_ID.match(self.partner_id):
            raise ValueError(f"invalid partner id {self.partner_id!r}")
        if self.md5_cred is not None and not _MD5_HEX.match(self.md5_cred):
            raise ValueError(f"partner {self.partner_id}: md5_cred must be 32 hex digits")
        if not self.addresses and self.md5_cred is None:
            raise ValueError(f"partner {self.partner_id}: a trunk needs addresses or a password")

    @property
    def context(self) -> str:
        return f"from-partner-{self.partner_id}"


def partner_trunk(
    partner_id: str,
    name: str,
    endpoint: str,
    addresses: Iterable[str] = (),
    password: str | None = None,
) -> PartnerTrunk:
    """A trunk; with ``password`` it authenticates as ``endpoint`` (realm "hotline")."""
    md5 = None
    if password:
        md5 = seat_credential(endpoint, password).md5_cred
    # A name goes into a pjsip.conf comment: keep it on one line.
    return PartnerTrunk(partner_id, " ".join(name.split()), endpoint, tuple(addresses), md5)


@dataclass(frozen=True)
class ConfigDirs:
    """Directories as Asterisk sees them (inside its root)."""

    etc: str
    run: str
    spool: str
    lib: str
    log: str
    modules: str
    data: str


@dataclass(frozen=True)
class RenderInput:
    asterisk: AsteriskSettings
    secrets: Secrets
    dirs: ConfigDirs
    seats: tuple[SeatCredential, ...]
    available_modules: frozenset[str]
    version_major: int
    moh_directory: str | None = None
    moh_modules: tuple[str, ...] = ()
    partner_trunks: tuple[PartnerTrunk, ...] = ()


def select_modules(
    available: Iterable[str], module_dir: str, extra_required: Iterable[str] = ()
) -> list[str]:
    """The modules to load: every required one (raising if any is missing) and the optional ones
    that are present, in a stable order."""
    present = set(available)
    required = [*REQUIRED_MODULES, *extra_required]
    missing = [name for name in required if name not in present]
    if missing:
        raise MissingModulesError(missing, module_dir)
    return required + [
        name for name in OPTIONAL_MODULES if name in present and name not in required
    ]


def moh_modules_for(files: Iterable[str]) -> tuple[str, ...] | None:
    """Extra modules needed to play the given music-on-hold files, or None if none is playable."""
    playable = False
    extra: set[str] = set()
    for name in files:
        suffix = Path(name).suffix.lower()
        if suffix in _MOH_EXTENSIONS:
            playable = True
            extra.update(_MOH_EXTENSIONS[suffix])
    return tuple(sorted(extra)) if playable else None


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _check_trunks(data: RenderInput) -> None:
    """Partner trunks must not shadow seats or each other, nor share the carrier's addresses
    (an INVITE from an address two identify sections match could land on either)."""
    seats = {seat.name for seat in data.seats}
    carrier = [ipaddress.ip_network(a, strict=False) for a in data.asterisk.trunk_addresses]
    endpoints: set[str] = set()
    for trunk in data.partner_trunks:
        if trunk.endpoint in seats or trunk.endpoint in endpoints:
            raise RenderError(
                f"partner {trunk.partner_id}: SIP name {trunk.endpoint!r} is already a seat or "
                "another partner's trunk"
            )
        endpoints.add(trunk.endpoint)
        for address in trunk.addresses:
            network = ipaddress.ip_network(address, strict=False)
            if any(network.overlaps(c) for c in carrier):
                raise RenderError(
                    f"partner {trunk.partner_id}: address {address} overlaps the carrier trunk "
                    f"({', '.join(data.asterisk.trunk_addresses)}); give the partner its own "
                    "address or a digest username"
                )


def render_all(data: RenderInput) -> dict[str, str]:
    """Render every template; returns {file name: contents}."""
    for number in data.asterisk.service_numbers:
        if not _SERVICE_NUMBER.match(number):
            raise RenderError(f"asterisk.service_numbers: {number!r} is not a dialable number")
    names = [seat.name for seat in data.seats]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RenderError(f"duplicate seat name(s): {', '.join(duplicates)}")
    _check_trunks(data)
    # Partner trunks read and add SIP headers (PJSIP_HEADER): then the module is required.
    extra = (*data.moh_modules, *(("res_pjsip_header_funcs.so",) if data.partner_trunks else ()))
    modules = select_modules(data.available_modules, data.dirs.modules, extra)
    context = {
        "asterisk": data.asterisk,
        "secrets": data.secrets,
        "dirs": data.dirs,
        "seats": data.seats,
        "required_modules": [m for m in modules if m not in OPTIONAL_MODULES],
        "optional_modules": [m for m in modules if m in OPTIONAL_MODULES],
        "service_numbers": data.asterisk.service_numbers,
        "moh_directory": data.moh_directory,
        "partner_trunks": data.partner_trunks,
        # Asterisk 22 deprecates auth_type=md5/md5_cred in favour of password_digest.
        "password_digest": data.version_major >= 22,
    }
    env = _environment()
    templates = sorted(env.list_templates(filter_func=lambda name: name.endswith(".j2")))
    if not templates:
        raise RenderError(f"no Asterisk templates found in {TEMPLATE_DIR}")
    return {name[: -len(".j2")]: env.get_template(name).render(context) for name in templates}
