"""The Asterisk runtime: install, configure, start, stop and query one Asterisk instance.

Owns every process and file operation on Asterisk; the ARI client and the service only talk to
it over HTTP. Two ways to run:

* **system**: an Asterisk >= 20 installed on the machine (``asterisk`` on PATH). The instance
  directory is ``<runtime_dir>/asterisk`` and host paths are Asterisk's paths.
* **debian-root** (the embedded default): a Debian-unstable root built once with debootstrap at
  ``settings.asterisk_root``; Asterisk runs under ``chroot``. Several instances can share one
  root (tests beside ``make up``): each has ``<root>/srv/hotline/<instance>/`` with its own
  etc/run/spool/lib/log/sounds/recordings, so paths seen by Asterisk are the host paths minus
  the root prefix (``asterisk_path``).

Life cycle: ``install()`` (idempotent) -> ``render_config(seats)`` -> ``start()`` (returns when
Asterisk is fully booted) -> ``stop()``. ``start``/``stop`` also work as a context manager
(sync or async) and ``stop()`` is idempotent and safe to call from a signal handler. Control
goes through Asterisk's own remote console (``asterisk -C <conf> -rx``), so a second process
(``hotline asterisk stop``) can control an instance it did not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

from hotline.asterisk.render import (
    ConfigDirs,
    PartnerTrunk,
    RenderInput,
    SeatCredential,
    moh_modules_for,
    partner_trunk,
    render_all,
    seat_credential,
)
from hotline.config import ConfigError, Settings
from hotline.secrets import Secrets

__all__ = [
    "AsteriskError",
    "AsteriskNotRunning",
    "AsteriskRuntime",
    "AsteriskStatus",
    "SeatCredential",
    "debian_mirror",
    "seat_credential",
]

log = logging.getLogger(__name__)

MIN_SYSTEM_VERSION = 20
DEBIAN_SUITE = "sid"
DEBIAN_PACKAGES = ("asterisk", "asterisk-modules", "asterisk-core-sounds-en-wav")
INSTANCE_SUBDIRS = ("etc", "run", "spool", "lib", "log", "sounds", "recordings")
SPOOL_SUBDIRS = ("recording", "tmp", "monitor")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# debootstrap's per-package progress ("I: Unpacking libfoo..."), as opposed to its stages.
_PER_PACKAGE = re.compile(
    r"^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) "
    r"(?!the |required |base )[a-z0-9][a-z0-9.+:-]*"
)
_VERSION = re.compile(r"Asterisk\s+(\d+)(\.[\w.~+-]*)?")


class AsteriskError(RuntimeError):
    """Asterisk could not be installed, configured, started or controlled."""


class AsteriskNotRunning(AsteriskError):
    """The instance's remote console does not answer."""


@dataclass(frozen=True)
class AsteriskStatus:
    running: bool
    version: str | None = None
    pid: int | None = None


# --------------------------------------------------------------------------------------------
# The Debian mirror, read from the machine's apt sources (never written into the project)


def _deb822_paragraphs(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    key = None
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, None
        elif line[0] in " \t" and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()


def _is_main_archive(uri: str, suites: list[str]) -> bool:
    if not uri.startswith(("http://", "https://", "file:")):
        return False
    if "security" in uri or "/debian" not in uri:
        return False
    # The main archive carries a plain suite (bookworm, stable, sid), not only -updates etc.
    return any("-" not in suite and "/" not in suite for suite in suites)


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The main Debian archive URI from this machine's apt sources."""
    candidates: list[str] = []
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for para in _deb822_paragraphs(path.read_text(encoding="utf-8", errors="replace")):
            if "deb" not in para.get("types", "").split():
                continue
            if para.get("enabled", "yes").lower() == "no":
                continue
            suites = para.get("suites", "").split()
            candidates += [u for u in para.get("uris", "").split() if _is_main_archive(u, suites)]
    lists = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            words = words[1:]
            if words and words[0].startswith("["):
                while words and not words[0].endswith("]"):
                    words = words[1:]
                words = words[1:]
            if len(words) >= 2 and _is_main_archive(words[0], [words[1]]):
                candidates.append(words[0])
    if not candidates:
        raise AsteriskError(
            f"no Debian archive found in the apt sources under {apt_dir}: cannot build the "
            "Asterisk root. Install Asterisk >= 20 on this machine and set asterisk.mode: system"
        )
    return candidates[0]


# --------------------------------------------------------------------------------------------


def _version_of(text: str) -> tuple[str, int] | None:
    match = _VERSION.search(text)
    if not match:
        return None
    return match.group(0).split(None, 1)[1], int(match.group(1))


def _ids_from_passwd(passwd: Path, user: str) -> tuple[int, int] | None:
    try:
        lines = passwd.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        parts = line.split(":")
        if len(parts) >= 4 and parts[0] == user:
            return int(parts[2]), int(parts[3])
    return None


def hosts_file(host_hosts: str, hostname: str) -> str:
    """The root's /etc/hosts: the machine's own entries, plus its host name if they lack it.

    Asterisk looks up this machine's host name (``gethostname``), then ``A.ROOT-SERVERS.NET``,
    for every RTP stream it opens on the wildcard address (``ast_find_ourip`` in acl.c: about 9
    times per call). debootstrap leaves the root without /etc/hosts, so each lookup became DNS
    queries from the SIP threads; under load the resolver dropped some and glibc blocked that
    thread 5 s per try, stalling every SIP transaction queued behind it (issue #5: INVITEs
    unanswered for 30 s at 160 calls). With the name in /etc/hosts the first lookup is answered
    from the file and no query leaves the process. The root sees the same names as the host, as
    a system Asterisk would.
    """
    lines = [line for line in host_hosts.splitlines() if line.strip()]
    names = {name.lower() for line in lines for name in line.split("#", 1)[0].split()[1:]}
    if not any(line.split("#", 1)[0].split()[:1] == ["127.0.0.1"] for line in lines):
        lines.insert(0, "127.0.0.1\tlocalhost")
    if hostname and hostname.lower() not in names:
        # Debian's own convention for a host name without a fixed address.
        lines.append(f"127.0.1.1\t{hostname}")
    header = "# Written by hotline (hotline.asterisk.runtime): the host's names for Asterisk."
    return "\n".join([header, *lines]) + "\n"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class AsteriskRuntime:
    """One Asterisk instance (see the module docstring)."""

    def __init__(self, settings: Settings, secrets: Secrets) -> None:
        self.settings = settings
        self.secrets = secrets
        self.process: subprocess.Popen[bytes] | None = None
        self.boot_seconds: float | None = None
        self._console: IO[bytes] | None = None
        self._stopping = False
        self._version: tuple[str, int] | None = None
        self._system_binary = self._find_system_asterisk()
        if self._system_binary:
            self.root = Path("/")
            self.instance_dir = settings.runtime_path / "asterisk"
        else:
            self.root = settings.asterisk_root
            self.instance_dir = self.root / "srv" / "hotline" / settings.asterisk.instance

    # -- where things are ----------------------------------------------------------------
    @property
    def system(self) -> bool:
        """True when a system Asterisk is used instead of the Debian root."""
        return self._system_binary is not None

    @property
    def mode(self) -> str:
        return "system" if self.system else "debian-root"

    def _find_system_asterisk(self) -> str | None:
        mode = self.settings.asterisk.mode
        if mode == "debian-root":
            return None
        binary = shutil.which("asterisk") or shutil.which("asterisk", path="/usr/sbin:/sbin")
        found = None
        if binary:
            result = subprocess.run(
                [binary, "-V"], capture_output=True, text=True, timeout=10, check=False
            )
            found = _version_of(result.stdout)
        if found and found[1] >= MIN_SYSTEM_VERSION:
            self._version = found
            return binary
        if mode == "system":
            what = f"Asterisk {found[0]}" if found else "no asterisk binary"
            raise AsteriskError(
                f"asterisk.mode is 'system' but {what} was found on PATH; "
                f"Asterisk >= {MIN_SYSTEM_VERSION} is needed (or use mode auto/debian-root)"
            )
        return None

    def _sub(self, name: str) -> Path:
        return self.instance_dir / name

    etc_dir = property(lambda self: self._sub("etc"))
    run_dir = property(lambda self: self._sub("run"))
    spool_dir = property(lambda self: self._sub("spool"))
    lib_dir = property(lambda self: self._sub("lib"))
    log_dir = property(lambda self: self._sub("log"))
    sounds_dir = property(lambda self: self._sub("sounds"))
    recordings_dir = property(lambda self: self._sub("recordings"))

    @property
    def ari_recordings_dir(self) -> Path:
        """Host path where ARI ``record`` writes (``<spool>/recording``); recordings are named
        relative to it."""
        return self.spool_dir / "recording"

    @property
    def console_log(self) -> Path:
        return self.log_dir / "console.log"

    @property
    def conf_file(self) -> Path:
        return self.etc_dir / "asterisk.conf"

    def asterisk_path(self, host_path: Path | str) -> str:
        """``host_path`` as Asterisk sees it (without the root prefix in debian-root mode)."""
        path = Path(host_path).resolve()
        if self.system:
            return str(path)
        try:
            return "/" + str(path.relative_to(self.root))
        except ValueError:
            raise ValueError(f"{path} is outside the Asterisk root {self.root}") from None

    @property
    def module_dir(self) -> Path:
        """Host path of the directory holding the ``*.so`` modules."""
        patterns = (
            "usr/lib/*/asterisk/modules",
            "usr/lib/asterisk/modules",
            "usr/lib64/asterisk/modules",
        )
        for pattern in patterns:
            for candidate in sorted(self.root.glob(pattern)):
                if (candidate / "chan_pjsip.so").exists():
                    return candidate
        raise AsteriskError(f"no Asterisk module directory with chan_pjsip.so under {self.root}")

    @property
    def data_dir(self) -> Path:
        """Host path of astdatadir (stock sounds, moh, ARI docs)."""
        for candidate in ("usr/share/asterisk", "var/lib/asterisk"):
            if (self.root / candidate / "sounds").is_dir():
                return self.root / candidate
        return self.root / "usr/share/asterisk"

    @property
    def installed(self) -> bool:
        return self.system or (self.root / "usr/sbin/asterisk").is_file()

    @property
    def version(self) -> str | None:
        """Installed Asterisk version (e.g. "22.10.1+dfsg..."), or None if not installed."""
        if self._version is None and self.installed:
            result = self._run([*self._binary(), "-V"], timeout=10)
            self._version = _version_of(result.stdout)
        return self._version[0] if self._version else None

    @property
    def version_major(self) -> int:
        _ = self.version
        if self._version is None:
            raise AsteriskError(f"cannot tell the Asterisk version in {self.root}")
        return self._version[1]

    # -- install -------------------------------------------------------------------------
    def install(self) -> None:
        """Make Asterisk available: nothing to do for a system one, else build the root once."""
        if self.system:
            log.info("using system Asterisk %s (%s)", self.version, self._system_binary)
            return
        if self.installed:
            log.info("Asterisk root %s is ready (Asterisk %s)", self.root, self.version)
            return
        if os.geteuid() != 0:
            raise AsteriskError(
                "building the Asterisk root needs root (debootstrap and chroot); run "
                "`hotline asterisk install` as root, or install Asterisk >= 20 on the system"
            )
        if not shutil.which("debootstrap"):
            raise AsteriskError("debootstrap is not installed (run scripts/install-debian-deps.sh)")
        self.root.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.root.parent / f".{self.root.name}.lock"
        with open(lock_path, "w") as lock:
            # Another process (a parallel test run) may be building the same root: wait for it.
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.installed:
                log.info("Asterisk root %s was built by another process", self.root)
                return
            self._build_root()

    def _build_root(self) -> None:
        mirror = debian_mirror()
        # Left-overs of interrupted builds; we hold the lock, so nobody is writing them.
        for stale in self.root.parent.glob(f".{self.root.name}.build-*"):
            log.info("removing an interrupted build: %s", stale)
            shutil.rmtree(stale, ignore_errors=True)
        if self.root.exists():
            raise AsteriskError(
                f"{self.root} exists but has no /usr/sbin/asterisk: remove it and run again"
            )
        build = self.root.parent / f".{self.root.name}.build-{os.getpid()}"
        command = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            DEBIAN_SUITE,
            str(build),
            mirror,
        ]
        log.info("building the Asterisk root in %s from %s (Debian %s, about a minute)",
                 self.root, mirror, DEBIAN_SUITE)  # fmt: skip
        started = time.monotonic()
        recent: list[str] = []
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip()
                recent = [*recent[-29:], line]
                # Hundreds of per-package lines; show the stages only.
                log.log(logging.DEBUG if _PER_PACKAGE.match(line) else logging.INFO,
                        "debootstrap: %s", line)  # fmt: skip
            rc = proc.wait()
        if rc != 0 or not (build / "usr/sbin/asterisk").is_file():
            shutil.rmtree(build, ignore_errors=True)
            raise AsteriskError(
                f"debootstrap failed (exit {rc}); last output:\n" + "\n".join(recent)
            )
        # The downloaded .debs are ~100 MB we never need again.
        for deb in (build / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        build.rename(self.root)
        self._version = None
        log.info("Asterisk root ready in %.0f s: Asterisk %s", time.monotonic() - started,
                 self.version)  # fmt: skip

    # -- configuration -------------------------------------------------------------------
    def _asterisk_ids(self) -> tuple[int, int] | None:
        """uid/gid that Asterisk runs as, or None to run as ourselves (unprivileged)."""
        if os.geteuid() != 0:
            return None
        return _ids_from_passwd(self.root / "etc/passwd", "asterisk")

    def _chown(self, path: Path) -> None:
        ids = self._asterisk_ids()
        if ids is not None:
            os.chown(path, *ids)

    def prepare_instance(self) -> None:
        """Create the instance directories, owned by the asterisk user."""
        if not self.installed:
            raise AsteriskError(f"Asterisk is not installed in {self.root}: run install() first")
        self.instance_dir.mkdir(parents=True, exist_ok=True)
        self.instance_dir.chmod(0o755)
        self._chown(self.instance_dir)
        for name in INSTANCE_SUBDIRS:
            path = self._sub(name)
            path.mkdir(exist_ok=True)
            # etc holds secrets; sounds must be readable by the service that writes prompts.
            path.chmod(0o750 if name in ("etc", "lib") else 0o755)
            self._chown(path)
        # Asterisk writes into these but does not create them (ARI recordings fail with ENOENT).
        for name in SPOOL_SUBDIRS:
            path = self.spool_dir / name
            path.mkdir(exist_ok=True)
            self._chown(path)
        if not self.system:
            self._write_hosts()

    def _write_hosts(self, host_hosts: Path = Path("/etc/hosts")) -> None:
        """Give the root an /etc/hosts naming this machine (see ``hosts_file``)."""
        try:
            current = host_hosts.read_text(errors="replace")
        except OSError:
            current = ""
        wanted = hosts_file(current, socket.gethostname())
        target = self.root / "etc" / "hosts"
        with contextlib.suppress(OSError):
            if target.read_text() == wanted:
                return
        # Shared by every instance in the root (parallel test runs): replace it atomically.
        tmp = target.with_name(f".hosts.{os.getpid()}")
        try:
            tmp.write_text(wanted)
            tmp.chmod(0o644)
            os.replace(tmp, target)
        except OSError as exc:  # a root built by another user: slower calls, not a failure
            with contextlib.suppress(OSError):
                tmp.unlink()
            log.warning("cannot write %s (%s): Asterisk will query DNS for the host name on "
                        "every call", target, exc)  # fmt: skip

    def _moh(self) -> tuple[str | None, tuple[str, ...]]:
        # Our own hold music (generated with the prompts) first, then the installation's.
        for moh in (self.sounds_dir / "moh", self.data_dir / "moh"):
            if moh.is_dir():
                extra = moh_modules_for(p.name for p in moh.iterdir() if p.is_file())
                if extra is not None:
                    return self.asterisk_path(moh), extra
        return None, ()

    def partner_trunks(self) -> tuple[PartnerTrunk, ...]:
        """The partner hotlines' SIP trunks from the partners file (digest passwords generated
        into the secrets file). A broken partners file is logged and leaves the trunks out: the
        carrier and the seats keep working, and ``hotline doctor`` names the problem."""
        from integrations.config import load_for_runtime
        from integrations.trunks import trunk_passwords

        runtime_dir = self.settings.runtime_path
        try:
            partners = [p for p in load_for_runtime(runtime_dir).partners if p.sip.enabled]
        except ConfigError as exc:
            log.error("partner trunks left out of the SIP configuration: %s", exc)
            return ()
        passwords = trunk_passwords(runtime_dir, partners)
        return tuple(
            partner_trunk(p.id, p.name, p.endpoint, p.sip.addresses, passwords.get(p.id))
            for p in partners
        )

    def render_config(
        self, seats: list[SeatCredential] | tuple[SeatCredential, ...] = ()
    ) -> list[Path]:
        """Write the rendered templates into the instance's etc dir; returns the files written."""
        self.prepare_instance()
        module_dir = self.module_dir
        moh_directory, moh_modules = self._moh()
        data = RenderInput(
            asterisk=self.settings.asterisk,
            secrets=self.secrets,
            dirs=ConfigDirs(
                etc=self.asterisk_path(self.etc_dir),
                run=self.asterisk_path(self.run_dir),
                spool=self.asterisk_path(self.spool_dir),
                lib=self.asterisk_path(self.lib_dir),
                log=self.asterisk_path(self.log_dir),
                modules=self.asterisk_path(module_dir),
                data=self.asterisk_path(self.data_dir),
            ),
            seats=tuple(seats),
            available_modules=frozenset(p.name for p in module_dir.glob("*.so")),
            version_major=self.version_major,
            moh_directory=moh_directory,
            moh_modules=moh_modules,
            partner_trunks=self.partner_trunks(),
        )
        files = render_all(data)
        written = []
        for name, text in files.items():
            target = self.etc_dir / name
            tmp = target.with_name(f".{name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, 0o640)
            self._chown(tmp)
            os.replace(tmp, target)
            written.append(target)
        log.info("wrote %d Asterisk config files to %s (%d seats)", len(written), self.etc_dir,
                 len(seats))  # fmt: skip
        return written

    # -- processes -----------------------------------------------------------------------
    def _binary(self) -> list[str]:
        if self._system_binary:
            return [self._system_binary]
        return ["chroot", str(self.root), "/usr/sbin/asterisk"]

    def _command(self, *args: str) -> list[str]:
        return [*self._binary(), "-C", self.asterisk_path(self.conf_file), *args]

    @staticmethod
    def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, capture_output=True, text=True, errors="replace", timeout=timeout, check=False
        )

    def cli(self, command: str, timeout: float = 10.0) -> str:
        """Run an Asterisk CLI command over the remote console and return its output."""
        try:
            result = self._run(self._command("-rx", command), timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise AsteriskError(
                f"Asterisk CLI {command!r} did not answer in {timeout:g} s"
            ) from exc
        output = result.stdout + result.stderr
        if result.returncode != 0 or output.startswith("Unable to connect"):
            raise AsteriskNotRunning(
                f"Asterisk instance {self.settings.asterisk.instance!r} is not running "
                f"({output.strip() or f'exit {result.returncode}'})"
            )
        return result.stdout

    def _answers(self) -> bool:
        try:
            self.cli("core show uptime", timeout=5)
        except AsteriskError:
            return False
        return True

    @property
    def pid(self) -> int | None:
        """Pid of the running Asterisk: ours if we started it, else from its pid file."""
        if self.process is not None and self.process.poll() is None:
            return self.process.pid
        try:
            pid = int((self.run_dir / "asterisk.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start Asterisk and return once it is fully booted.

        Raises AsteriskError with the tail of the console log if it dies or does not boot in
        ``timeout`` seconds, or if this instance is already running.
        """
        if self.process is not None and self.process.poll() is None:
            return
        if not self.conf_file.is_file():
            raise AsteriskError(f"{self.conf_file} is missing: call render_config() first")
        if self._answers():
            raise AsteriskError(
                f"Asterisk instance {self.settings.asterisk.instance!r} is already running "
                f"(pid {self.pid}); stop it first (`hotline asterisk stop`)"
            )
        command = self._command("-f", "-n")
        ids = self._asterisk_ids()
        if ids is not None:
            command[-2:-2] = ["-U", "asterisk", "-G", "asterisk"]
        self._stopping = False
        self._console = open(self.console_log, "ab")  # kept open while Asterisk runs
        self._console.write(f"--- hotline: starting {' '.join(command)}\n".encode())
        self._console.flush()
        started = time.monotonic()
        # A session of its own: Ctrl-C in the terminal reaches us, and we stop Asterisk cleanly.
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.info("starting Asterisk instance %r (pid %d)", self.settings.asterisk.instance,
                 self.process.pid)  # fmt: skip
        deadline = started + timeout
        while True:
            if self.process is None:  # stop() ran meanwhile (a signal handler)
                raise AsteriskError("Asterisk start was interrupted by stop()")
            if self.process.poll() is not None:
                code = self.process.returncode
                self._close_console()
                self.process = None
                raise AsteriskError(
                    f"Asterisk exited (code {code}) while starting; last lines of "
                    f"{self.console_log}:\n{_tail(self.console_log)}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                raise AsteriskError(
                    f"Asterisk did not finish booting within {timeout:g} s; last lines of "
                    f"{self.console_log}:\n{_tail(self.console_log)}"
                )
            try:
                out = self.cli("core waitfullybooted", timeout=max(remaining, 0.5))
            except AsteriskError:
                # The control socket is not up yet; it appears within milliseconds.
                time.sleep(0.02)
                continue
            if "fully booted" in out:
                break
        self.boot_seconds = time.monotonic() - started
        a = self.settings.asterisk
        log.info(
            "Asterisk %s up in %.2f s: SIP udp %s:%d, ARI http://%s:%d, RTP %d-%d",
            self.version, self.boot_seconds, a.bind, a.sip_port, a.bind, a.http_port,
            a.rtp_start, a.rtp_end,
        )  # fmt: skip

    def _close_console(self) -> None:
        if self._console is not None:
            self._console.close()
            self._console = None

    def _kill(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait()
            self.process = None
        self._close_console()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the instance (ours or one started by another process); idempotent.

        Asks Asterisk to stop at once (``core stop now``), waits, and kills it if it hangs.
        """
        if self._stopping:
            return
        self._stopping = True
        try:
            pid = self.pid
            if pid is None and not self._answers():
                self._kill()
                return
            with contextlib.suppress(AsteriskError):
                self.cli("core stop now", timeout=timeout)
            deadline = time.monotonic() + timeout
            if self.process is not None:
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    log.warning("Asterisk did not stop in %g s; killing it", timeout)
                self._kill()
            elif pid is not None:
                while time.monotonic() < deadline and self._alive(pid):
                    time.sleep(0.05)
                if self._alive(pid):
                    log.warning("Asterisk (pid %d) did not stop in %g s; killing it", pid, timeout)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            log.info("Asterisk instance %r stopped", self.settings.asterisk.instance)
        finally:
            self._stopping = False

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie child of ours still "exists"; reap it if it is ours.
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return False
        return True

    def status(self) -> AsteriskStatus:
        """Whether the instance answers on its control socket, its version and pid."""
        try:
            out = self.cli("core show version", timeout=5)
        except AsteriskError:
            return AsteriskStatus(running=False, version=self.version if self.installed else None)
        found = _version_of(out)
        return AsteriskStatus(running=True, version=found[0] if found else None, pid=self.pid)

    def reload_pjsip(self, seats: list[SeatCredential] | None = None) -> None:
        """Re-render the configuration (when ``seats`` is given) and reload PJSIP."""
        if seats is not None:
            self.render_config(seats)
        out = self.cli("module reload res_pjsip.so")
        if "reloaded" not in out.lower() and out.strip():
            raise AsteriskError(f"PJSIP reload failed: {out.strip()}")

    # -- context managers ----------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    async def __aenter__(self) -> Self:
        await self.astart()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()
