"""Configuration is validated at start; a bad value stops with a message naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hotline.config import ConfigError, load_settings
from hotline.testing import REPO_ROOT


def write(tmp_path, text: str):
    path = tmp_path / "hotline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_loopback_and_sqlite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.asterisk.bind == "127.0.0.1" and settings.service.bind == "127.0.0.1"
    assert settings.database_url == f"sqlite:///{tmp_path / '.hotline' / 'hotline.db'}"
    assert settings.asterisk.service_numbers == ["12348"]


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "asterisk:\n  sip_port: 5070\n  http_port: 8090\n")
    monkeypatch.setenv("HOTLINE_ASTERISK__SIP_PORT", "5080")
    settings = load_settings(path)
    assert settings.asterisk.sip_port == 5080 and settings.asterisk.http_port == 8090


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("asterisk:\n  sip_port: 70000\n", "asterisk.sip_port", "less than or equal to 65535"),
        ("asterisk:\n  sip_prot: 5060\n", "asterisk.sip_prot", "unknown key"),
        ("asterisk:\n  bind: localhost-ish\n", "asterisk.bind", "does not appear to be an IPv4"),
        ("asterisk:\n  rtp_start: 2000\n  rtp_end: 1500\n", "asterisk", "rtp_end must be greater"),
        ("asterisk:\n  trunk_addresses: [300.1.1.1]\n", "asterisk.trunk_addresses", "does not"),
        ("log_level: LOUD\n", "log_level", "Input should be"),
        ("workorders:\n  callback_within_h: 0\n", "workorders.callback_within_h", "greater than 0"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, key, problem):
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    message = str(info.value)
    assert f"  {key}:" in message and problem in message, message


def test_not_yaml_and_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "asterisk: [unclosed\n"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_settings(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")


def test_cli_exits_non_zero_with_the_message(tmp_path):
    path = write(tmp_path, "service:\n  port: nope\n")
    result = subprocess.run(
        [sys.executable, "-m", "hotline", "--config", str(path), "config"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert "service.port" in result.stderr and "valid integer" in result.stderr
    assert result.stdout == ""


def test_the_callback_time_limit_reaches_the_work_orders(tmp_path):
    from datetime import timedelta

    from hotline.secrets import load_or_create
    from hotline.service import HotlineService

    settings = load_settings(write(tmp_path, "workorders:\n  callback_within_h: 2.5\n"))
    settings = settings.model_copy(update={"runtime_dir": tmp_path / "runtime"})
    settings.runtime_path.mkdir(parents=True)
    service = HotlineService(settings, load_or_create(settings.runtime_path), sounds_path="/s")
    try:
        assert service.workorders.sla.callback_within == timedelta(hours=2.5)
    finally:
        service.engine.dispose()
