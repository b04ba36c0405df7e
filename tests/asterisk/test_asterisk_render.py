"""Rendering and install helpers without a running Asterisk (the module list comes from the real
shared root when it exists)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.asterisk.render import (
    OPTIONAL_MODULES,
    REQUIRED_MODULES,
    ConfigDirs,
    MissingModulesError,
    PartnerTrunk,
    RenderError,
    RenderInput,
    SeatCredential,
    partner_trunk,
    render_all,
    seat_credential,
    select_modules,
)
from hotline.asterisk.runtime import AsteriskError, debian_mirror
from hotline.config import AsteriskSettings
from hotline.secrets import Secrets
from hotline.testing import DEFAULT_TEST_ASTERISK_ROOT

SECRETS = Secrets(ari_user="hotline", ari_password="pw-123", phone_hash_key="k", service_token="t")
DIRS = ConfigDirs("/e", "/r", "/s", "/l", "/g", "/m", "/usr/share/asterisk")


def _available() -> frozenset[str]:
    modules = sorted(DEFAULT_TEST_ASTERISK_ROOT.glob("usr/lib/*/asterisk/modules"))
    if modules:
        return frozenset(p.name for p in modules[0].glob("*.so"))
    return frozenset(REQUIRED_MODULES)


def _input(**changes: object) -> RenderInput:
    values: dict[str, object] = {
        "asterisk": AsteriskSettings(),
        "secrets": SECRETS,
        "dirs": DIRS,
        "seats": (seat_credential("seat1", "secret"),),
        "available_modules": _available(),
        "version_major": 22,
    }
    values.update(changes)
    return RenderInput(**values)  # type: ignore[arg-type]


def test_seat_credential_is_md5_of_name_realm_password() -> None:
    # echo -n "fred:hotline:mypass" | md5sum
    assert seat_credential("fred", "mypass").md5_cred == "5952105d13a1fe3b1b0a2b1abf0415d8"


@pytest.mark.parametrize("name", ["carrier", "global", "bad name", "", "x]y"])
def test_seat_names_that_would_break_pjsip_conf_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="seat name"):
        SeatCredential(name, "0" * 32)


def test_missing_required_module_fails_loudly_naming_it() -> None:
    available = _available() - {"res_ari.so", "chan_pjsip.so"}
    with pytest.raises(MissingModulesError) as info:
        render_all(_input(available_modules=available))
    assert info.value.missing == ["chan_pjsip.so", "res_ari.so"]
    assert "res_ari.so" in str(info.value) and "/m" in str(info.value)


def test_optional_modules_load_only_when_present() -> None:
    loaded = select_modules(set(REQUIRED_MODULES) | {"chan_websocket.so"}, "/m")
    assert "chan_websocket.so" in loaded
    assert not set(OPTIONAL_MODULES) - {"chan_websocket.so"} & set(loaded)


def test_rendered_files_carry_settings_and_secrets() -> None:
    files = render_all(_input())
    assert "[directories]\n" in files["asterisk.conf"]  # not the "(!)" template form
    assert "astetcdir => /e" in files["asterisk.conf"]
    assert "autoload = no" in files["modules.conf"]
    assert "require => res_ari.so" in files["modules.conf"]
    assert "bindaddr = 127.0.0.1" in files["http.conf"]
    assert "password = pw-123" in files["ari.conf"]
    assert "rtpstart = 10000" in files["rtp.conf"]
    pjsip = files["pjsip.conf"]
    assert "endpoint_identifier_order = username,ip" in pjsip
    assert "match = 127.0.0.1/32" in pjsip
    expected = seat_credential("seat1", "secret").md5_cred
    assert f"password_digest = MD5:{expected}" in pjsip
    assert "secret" not in pjsip.replace("seat", "")  # never the clear password
    dialplan = files["extensions.conf"]
    assert "exten => 12348,1,Stasis(hotline,inbound,${EXTEN})" in dialplan
    assert "Stasis(hotline,unknown,${EXTEN})" in dialplan


def test_older_asterisk_gets_md5_cred_form() -> None:
    pjsip = render_all(_input(version_major=20))["pjsip.conf"]
    assert "auth_type = md5" in pjsip and "md5_cred = " in pjsip


def test_undialable_service_number_is_refused() -> None:
    settings = AsteriskSettings(service_numbers=["12348", "12;evil"])
    with pytest.raises(RenderError, match="12;evil"):
        render_all(_input(asterisk=settings))


def test_duplicate_seats_are_refused() -> None:
    seats = (seat_credential("a", "1"), seat_credential("a", "2"))
    with pytest.raises(RenderError, match="duplicate"):
        render_all(_input(seats=seats))


def test_mirror_is_read_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "URIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
        "\n"
        "Types: deb\n"
        "# a comment\n"
        "URIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_is_read_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "deb http://sec.example/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
    )
    assert debian_mirror(tmp_path) == "http://m.example/debian"


def test_no_debian_archive_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://archive.ubuntu.com/ubuntu noble main\n")
    with pytest.raises(AsteriskError, match="no Debian archive"):
        debian_mirror(tmp_path)


# Partner trunks (110, 12345) -----------------------------------------------------------------
def _trunks() -> tuple[PartnerTrunk, ...]:
    return (
        partner_trunk("110", "110 公安报警服务台", "partner-110", ["192.0.2.10/32"]),
        partner_trunk("12345", "12345 政务\n热线", "trunk12345", password="trunk-pw"),
    )


def _sections(text: str) -> dict[str, list[dict[str, str]]]:
    """pjsip.conf as {section: [its key/value blocks]} (a name may carry several types)."""
    sections: dict[str, list[dict[str, str]]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if line.startswith("["):
            current = {}
            sections.setdefault(line.strip("[]"), []).append(current)
        elif "=" in line and current is not None:
            key, value = (part.strip() for part in line.split("=", 1))
            current[key] = f"{current[key]},{value}" if key in current else value
    return sections


def test_partner_trunks_render_endpoint_identify_auth_and_context() -> None:
    files = render_all(_input(partner_trunks=_trunks()))
    pjsip = _sections(files["pjsip.conf"])
    by_ip = pjsip["partner-110"][0]
    assert by_ip["type"] == "endpoint" and by_ip["context"] == "from-partner-110"
    assert by_ip["identify_by"] == "ip" and "auth" not in by_ip  # no From user can pass as 110
    assert pjsip["partner-110-identify"][0] == {
        "type": "identify", "endpoint": "partner-110", "match": "192.0.2.10/32"
    }  # fmt: skip
    endpoint, aor, auth = pjsip["trunk12345"]
    assert endpoint["auth"] == "trunk12345" and endpoint["identify_by"] == "username"
    assert aor["type"] == "aor" and endpoint["aors"] == "trunk12345"  # it may register
    assert endpoint["context"] == "from-partner-12345"
    expected = seat_credential("trunk12345", "trunk-pw").md5_cred
    assert auth["password_digest"] == f"MD5:{expected}" and auth["username"] == "trunk12345"
    assert "trunk-pw" not in files["pjsip.conf"]  # the clear password is never written
    assert "12345 政务 热线" in files["pjsip.conf"]  # a name stays on its comment line
    # The carrier is identified by address only.
    assert pjsip["carrier"][0]["identify_by"] == "ip"
    dialplan = files["extensions.conf"]
    assert "[from-partner-110]" in dialplan and "[from-partner-12345]" in dialplan
    assert "exten => _X!,1,Stasis(hotline,partner,12345,${EXTEN})" in dialplan
    assert "res_pjsip_header_funcs.so" in files["modules.conf"]


def test_no_partner_trunks_render_no_partner_sections() -> None:
    files = render_all(_input())
    assert "from-partner" not in files["pjsip.conf"] + files["extensions.conf"]


def test_partner_address_overlapping_the_carrier_is_refused() -> None:
    clash = partner_trunk("12345", "12345", "partner-12345", ["127.0.0.0/8"])
    with pytest.raises(RenderError, match="overlaps the carrier"):
        render_all(_input(partner_trunks=(clash,)))


def test_partner_trunk_shadowing_a_seat_is_refused() -> None:
    clash = partner_trunk("12345", "12345", "seat1", password="x")
    with pytest.raises(RenderError, match="already a seat"):
        render_all(_input(partner_trunks=(clash,)))


@pytest.mark.parametrize("endpoint", ["carrier", "bad name", "a,b", ""])
def test_partner_trunk_names_that_would_break_pjsip_conf_are_refused(endpoint: str) -> None:
    with pytest.raises(ValueError):
        partner_trunk("110", "110", endpoint, ["192.0.2.10/32"])


def test_partner_trunk_without_address_or_password_is_refused() -> None:
    with pytest.raises(ValueError, match="addresses or a password"):
        partner_trunk("110", "110", "partner-110")


def test_partner_trunks_need_the_header_functions_module() -> None:
    available = _available() - {"res_pjsip_header_funcs.so"}
    with pytest.raises(MissingModulesError, match="res_pjsip_header_funcs"):
        render_all(_input(partner_trunks=_trunks(), available_modules=available))
    files = render_all(_input(partner_trunks=_trunks()))
    assert files["modules.conf"].count("load => res_pjsip_header_funcs.so") == 1
