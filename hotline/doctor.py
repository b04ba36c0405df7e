"""``hotline doctor``: check every part the hotline needs and say how to fix what is wrong."""

from __future__ import annotations

import base64
import importlib
import json
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import click

from hotline.config import Settings

PYTHON_MODULES = [
    "aiohttp",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "pydantic",
    "yaml",
    "jinja2",
    "pjsua2",
    "vosk",
    "numpy",
]
TOOLS = {"espeak-ng": "espeak-ng", "sox": "sox", "sipp": "sip-tester", "debootstrap": "debootstrap"}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _python_modules(settings: Settings) -> Check:
    missing = []
    for module in PYTHON_MODULES:
        try:
            importlib.import_module(module)
        except Exception:
            missing.append(module)
    if missing:
        return Check(
            "python packages", False, f"missing: {', '.join(missing)}", "run `make install`"
        )
    return Check("python packages", True, f"{len(PYTHON_MODULES)} modules import")


def _tools(settings: Settings) -> Check:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        packages = " ".join(TOOLS[t] for t in missing)
        return Check(
            "system tools",
            False,
            f"missing: {', '.join(missing)}",
            f"run `scripts/install-debian-deps.sh` (apt-get install {packages})",
        )
    return Check("system tools", True, ", ".join(TOOLS))


def _asterisk(settings: Settings) -> Check:
    from hotline.asterisk.runtime import AsteriskRuntime
    from hotline.secrets import load_or_create

    runtime = AsteriskRuntime(settings, load_or_create(settings.runtime_path))
    if not runtime.installed:
        return Check("asterisk", False, "not installed", "run `hotline asterisk install`")
    status = runtime.status()
    if not status.running:
        return Check(
            "asterisk",
            False,
            f"installed ({runtime.mode}) but not running",
            "run `make up` (or `hotline asterisk start`)",
        )
    return Check("asterisk", True, f"running {status.version}")


def _ari(settings: Settings) -> Check:
    from hotline.secrets import load_or_create

    secrets = load_or_create(settings.runtime_path)
    ast = settings.asterisk
    url = f"http://{ast.bind}:{ast.http_port}/ari/asterisk/info"
    token = base64.b64encode(f"{secrets.ari_user}:{secrets.ari_password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            info = json.load(response)
    except urllib.error.HTTPError as exc:
        return Check(
            "ARI",
            False,
            f"{url}: HTTP {exc.code}",
            "credentials differ from .hotline/secrets.yaml: re-render with `hotline setup`",
        )
    except OSError as exc:
        return Check("ARI", False, f"{url}: {exc}", "start Asterisk (`make up`)")
    return Check("ARI", True, f"{url} answers (Asterisk {info['system']['version']})")


def _port_in_use(host: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _ports(settings: Settings) -> Check:
    ast, svc = settings.asterisk, settings.service
    used = []
    for label, host, port, kind in [
        ("SIP", ast.bind, ast.sip_port, socket.SOCK_DGRAM),
        ("ARI/HTTP", ast.bind, ast.http_port, socket.SOCK_STREAM),
        ("service", svc.bind, svc.port, socket.SOCK_STREAM),
    ]:
        if _port_in_use(host, port, kind):
            used.append(f"{label} {host}:{port}")
    detail = "in use (expected while the hotline runs): " + ", ".join(used) if used else "all free"
    return Check("ports", True, detail)


def _database(settings: Settings) -> Check:
    from hotline.db import current_revision, head_revision, make_engine

    try:
        engine = make_engine(settings.database_url)
        current = current_revision(engine)
        engine.dispose()
    except Exception as exc:
        return Check(
            "database",
            False,
            f"{exc.__class__.__name__}: {exc}",
            "check database.url, and that the server is running",
        )
    head = head_revision()
    if current != head:
        return Check(
            "database",
            False,
            f"at revision {current}, latest is {head}",
            "run `hotline db upgrade`",
        )
    return Check("database", True, f"at the latest revision {head}")


def _prompts(settings: Settings) -> Check:
    from hotline import prompts
    from hotline.asterisk.runtime import AsteriskRuntime
    from hotline.secrets import load_or_create

    runtime = AsteriskRuntime(settings, load_or_create(settings.runtime_path))
    missing = prompts.missing(prompts.load_catalogue(), runtime.sounds_dir, ("zh", "en"))
    if missing:
        return Check(
            "prompts",
            False,
            f"{len(missing)} missing, e.g. {missing[0]}",
            "run `hotline prompts generate`",
        )
    return Check("prompts", True, "every catalogue prompt has audio")


def _speech_model(settings: Settings) -> Check:
    path = settings.speech.model_path
    if path is None:
        return Check(
            "speech model",
            False,
            "speech.model_path is not set (live transcripts off)",
            "set speech.model_path to a Vosk model directory",
        )
    if not (path / "am").is_dir() and not (path / "conf").is_dir():
        return Check(
            "speech model",
            False,
            f"{path} is not a Vosk model directory",
            "point speech.model_path at an unpacked Vosk model",
        )
    return Check("speech model", True, str(path))


CHECKS: list[Callable[[Settings], Check]] = [
    _python_modules,
    _tools,
    _asterisk,
    _ari,
    _ports,
    _database,
    _prompts,
    _speech_model,
]


def run_checks(settings: Settings) -> list[Check]:
    """Print each check; return the failed ones."""
    problems = []
    for check_fn in CHECKS:
        try:
            check = check_fn(settings)
        except Exception as exc:  # a broken check must not hide the others
            check = Check(check_fn.__name__.strip("_"), False, f"check failed: {exc}")
        mark = click.style("✔", fg="green") if check.ok else click.style("✘", fg="red")
        click.echo(f"{mark} {check.name}: {check.detail}")
        if not check.ok:
            click.echo(f"    fix: {check.fix}")
            problems.append(check)
    return problems
