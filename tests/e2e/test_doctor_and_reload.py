"""`hotline doctor` against a running hotline, and a flow reload that refuses a broken flow."""

from __future__ import annotations

import shutil
import signal

import pytest
import yaml

from ivr.flow import DEFAULT_FLOW

pytestmark = pytest.mark.e2e


def test_doctor_finds_a_healthy_hotline(hotline_service):
    result = hotline_service.cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("python packages", "system tools", "asterisk", "ARI", "database", "prompts",
                  "speech model"):  # fmt: skip
        assert f"✔ {check}:" in result.stdout, result.stdout


def test_doctor_says_how_to_fix_what_is_wrong(hotline_service, tmp_path):
    config = yaml.safe_load(hotline_service.config_path.read_text(encoding="utf-8"))
    config["asterisk"]["http_port"] = 1  # nothing listens there
    config["speech"] = {"model_path": str(tmp_path / "no-model")}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = hotline_service.cli("--config", str(broken), "doctor")
    assert result.returncode == 1
    assert "✘ ARI:" in result.stdout and "✘ speech model:" in result.stdout
    assert result.stdout.count("fix:") >= 2


def test_a_broken_flow_is_refused_on_reload_and_the_old_one_stays(hotline_service, tmp_path):
    flow = tmp_path / "flow.yaml"
    shutil.copyfile(DEFAULT_FLOW, flow)
    hotline_service.restart_with(ivr={"flow_file": str(flow)})
    try:
        flow.write_text(
            DEFAULT_FLOW.read_text(encoding="utf-8").replace("next: screen", "next: nowhere"),
            encoding="utf-8",
        )
        mark = hotline_service.log_path.stat().st_size
        hotline_service.process.send_signal(signal.SIGHUP)
        from hotline.testing import wait_for

        log = wait_for(
            lambda: (
                "flow reload refused"
                in (text := hotline_service.log_path.read_bytes()[mark:].decode(errors="replace"))
                and text
            ),
            10,
            message="the reload to be refused",
        )
        assert "nowhere" in log and f"{flow}:" in log  # FILE:LINE: problem
        assert (hotline_service.health() or {}).get("ari_connected")  # still serving
    finally:
        hotline_service.restart_with(ivr={"flow_file": None})
