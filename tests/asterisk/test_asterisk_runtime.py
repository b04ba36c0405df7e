"""The Asterisk runtime against a real Asterisk: boot, ARI access, listening addresses, file
ownership, reload, stop and failed starts."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hotline.asterisk.runtime import AsteriskError, AsteriskRuntime, hosts_file, seat_credential
from hotline.testing import AsteriskInstance, running_test_asterisk, wait_for


def _get(url: str, auth: tuple[str, str] | None = None) -> int:
    return _request("GET", url, auth)


def _request(method: str, url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url, method=method)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _listeners(table: str, port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net) with a socket bound to ``port``."""
    found = set()
    for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if int(port_hex, 16) == port and (table == "udp" or state == "0A"):
            found.add(address)
    return found


def test_boots_and_reports_status(asterisk_instance: AsteriskInstance) -> None:
    runtime = asterisk_instance.runtime
    state = runtime.status()
    assert state.running
    assert state.version and int(state.version.split(".")[0]) >= 20
    assert state.pid == runtime.pid and state.pid is not None
    assert "fully booted" in runtime.cli("core waitfullybooted")


def test_ari_needs_the_generated_credentials(asterisk_instance: AsteriskInstance) -> None:
    url = f"{asterisk_instance.ari_url}/ari/asterisk/info"
    assert _get(url, asterisk_instance.ari_auth) == 200
    assert _get(url) == 401
    assert _get(url, (asterisk_instance.secrets.ari_user, "wrong")) == 401


def test_http_and_sip_listen_on_loopback_only(asterisk_instance: AsteriskInstance) -> None:
    loopback = "0100007F"  # 127.0.0.1 in /proc/net byte order
    assert _listeners("tcp", asterisk_instance.settings.asterisk.http_port) == {loopback}
    assert _listeners("udp", asterisk_instance.sip_port) == {loopback}


def test_instance_files_belong_to_the_asterisk_user(asterisk_instance: AsteriskInstance) -> None:
    runtime = asterisk_instance.runtime
    if runtime.system:
        pytest.skip("ownership rules are for the Debian root")
    assert runtime.instance_dir.is_relative_to(runtime.root)
    assert runtime.asterisk_path(runtime.sounds_dir) == (
        f"/srv/hotline/{asterisk_instance.settings.asterisk.instance}/sounds"
    )
    passwd = (runtime.root / "etc/passwd").read_text()
    uid = next(
        int(line.split(":")[2]) for line in passwd.splitlines() if line.startswith("asterisk:")
    )
    ari_conf = (runtime.etc_dir / "ari.conf").stat()
    assert ari_conf.st_uid == uid
    assert ari_conf.st_mode & 0o777 == 0o640
    assert "\n[directories]\n" in (runtime.etc_dir / "asterisk.conf").read_text()
    assert (runtime.lib_dir / "astdb.sqlite3").exists()  # Asterisk could write its own state


def test_hosts_file_names_the_machine() -> None:
    text = hosts_file("127.0.0.1 localhost\n# comment vm\n10.0.0.5 other.example other\n", "vm")
    lines = text.splitlines()
    assert lines[0].startswith("#")
    assert "10.0.0.5 other.example other" in lines  # the host's entries are kept
    assert lines[-1] == "127.0.1.1\tvm"  # a name only in a comment does not count
    # Already named (any case, any alias position): nothing added.
    assert "127.0.1.1" not in hosts_file("127.0.0.1 localhost\n127.0.0.1 box VM\n", "vm")
    # No host file at all: loopback and the name still resolve.
    assert hosts_file("", "vm").splitlines()[1:] == ["127.0.0.1\tlocalhost", "127.0.1.1\tvm"]


def test_root_resolves_the_host_name_without_dns(asterisk_instance: AsteriskInstance) -> None:
    """Issue #5: Asterisk resolves the host name for each call's RTP; it must come from a file."""
    runtime = asterisk_instance.runtime
    if runtime.system:
        pytest.skip("the system's own resolver configuration applies")
    hostname = socket.gethostname()
    assert hostname.lower() in (runtime.root / "etc/hosts").read_text().lower().split()
    # getent through the root's own nsswitch ("files dns"): answered from /etc/hosts.
    found = subprocess.run(
        ["chroot", str(runtime.root), "getent", "hosts", hostname],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    assert found.returncode == 0 and hostname in found.stdout


def test_idle_memory_is_small(asterisk_instance: AsteriskInstance) -> None:
    pid = asterisk_instance.runtime.pid
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(status.split("VmRSS:")[1].split()[0])
    # ~58 MB measured with the minimal module list; autoload=yes costs ~90 MB.
    assert rss_kb < 120_000, f"Asterisk idles at {rss_kb} kB"


def test_stop_start_reload_and_control_from_another_process(tmp_path: Path) -> None:
    with running_test_asterisk(tmp_path, seat_names=("seatA",)) as instance:
        runtime = instance.runtime
        # A second runtime object is what `hotline asterisk stop|status` in another process uses.
        other = AsteriskRuntime(instance.settings, instance.secrets)
        assert other.status().running
        with pytest.raises(AsteriskError, match="already running"):
            other.start()

        seats = [seat_credential(instance.seat.name, instance.seat.password)]
        seats.append(seat_credential("seatB", "another"))
        runtime.reload_pjsip(seats)
        assert "seatB" in runtime.cli("pjsip show endpoints")

        pid = runtime.pid
        assert pid is not None
        other.stop()
        assert runtime.process is not None
        wait_for(lambda: runtime.process.poll() is not None, 10, message="Asterisk to exit")
        assert not other.status().running
        with pytest.raises(AsteriskError, match="not running"):
            runtime.cli("core show uptime")
        runtime.stop()  # idempotent on a stopped instance

        runtime.start()  # restarts with the same config, seatB included
        assert runtime.status().running
        assert "seatB" in runtime.cli("pjsip show endpoints")
        runtime.stop()
        assert runtime.process is None
        assert not runtime.status().running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_start_failure_reports_the_log_tail(tmp_path: Path) -> None:
    with running_test_asterisk(tmp_path) as instance:
        runtime = instance.runtime
        runtime.stop()
        with open(runtime.etc_dir / "modules.conf", "a") as handle:
            handle.write("require => res_hotline_missing.so\n")
        with pytest.raises(AsteriskError, match="exited") as info:
            runtime.start()
        assert "res_hotline_missing.so" in str(info.value)
        assert runtime.process is None
        runtime.render_config()  # a good config boots again
        runtime.start()
        assert runtime.status().running


async def test_async_context_manager(tmp_path: Path) -> None:
    with running_test_asterisk(tmp_path) as instance:
        runtime = instance.runtime
        await runtime.astop()
        async with runtime:
            assert runtime.status().running
        assert not runtime.status().running


def test_cli_commands_use_the_settings_from_the_context(
    asterisk_instance: AsteriskInstance,
) -> None:
    from click.testing import CliRunner

    from hotline.asterisk.cli import asterisk

    runner = CliRunner()
    result = runner.invoke(asterisk, ["status"], obj=asterisk_instance.settings)
    assert result.exit_code == 0, result.output
    assert f"pid {asterisk_instance.runtime.pid}" in result.output
    result = runner.invoke(
        asterisk, ["cli", "pjsip", "show", "endpoints"], obj=asterisk_instance.settings
    )
    assert result.exit_code == 0, result.output
    assert asterisk_instance.seat.name in result.output


def test_ari_bridge_recording_can_start(asterisk_instance: AsteriskInstance) -> None:
    # Asterisk does not create <spool>/recording itself; without it this is a 500.
    auth = asterisk_instance.ari_auth
    base = f"{asterisk_instance.ari_url}/ari"
    bridge_id = f"rec-{os.getpid()}"
    assert _request("POST", f"{base}/bridges/{bridge_id}?type=mixing", auth) == 200
    try:
        url = f"{base}/bridges/{bridge_id}/record?name={bridge_id}&format=wav"
        assert _request("POST", url, auth) == 201
        assert asterisk_instance.runtime.ari_recordings_dir.is_dir()
        _request("POST", f"{base}/recordings/live/{bridge_id}/stop", auth)
    finally:
        _request("DELETE", f"{base}/bridges/{bridge_id}", auth)
