"""The ``hotline`` command line: one entry point for operators and developers."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from hotline.config import ConfigError, Settings, load_settings
from hotline.secrets import load_or_create


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


@click.group()
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="configuration file (default: $HOTLINE_CONFIG or .hotline/hotline.yaml)",
)
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    """12348 公共法律服务热线 call-center backend."""
    try:
        settings = load_settings(config_file)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    _setup_logging(settings.log_level)
    ctx.obj = settings


def _prepare(settings: Settings):
    """Everything `up` needs before the first call: Asterisk, its config, prompts, database."""
    from acd.seats import credentials
    from agent_desk.cli import ensure_first_admin
    from hotline import prompts
    from hotline.asterisk.runtime import AsteriskRuntime
    from hotline.db import make_engine, migrate

    secrets = load_or_create(settings.runtime_path)
    engine = make_engine(settings.database_url)
    migrate(engine)
    seats = credentials(engine)
    engine.dispose()
    runtime = AsteriskRuntime(settings, secrets)
    runtime.install()
    prompts.hold_music(runtime.sounds_dir)  # before rendering: musiconhold.conf points at it
    runtime.render_config(seats)
    report = prompts.generate(
        prompts.load_catalogue(),
        runtime.sounds_dir,
        cache_dir=settings.prompt_cache,
        recorded_dir=settings.prompts.recorded_dir,
    )
    click.echo(
        f"prompts: {report.spoken} spoken, {report.cached} from cache, {report.recorded} recorded;"
        f" {len(seats)} seats"
    )
    created = ensure_first_admin(settings)
    if created is not None:
        username, password = created
        click.echo(
            f"first administrator created: user {username!r}, password {password!r} "
            "(shown once; it must be changed at first sign-in)"
        )
    return secrets, runtime


@main.command()
@click.pass_obj
def up(settings: Settings) -> None:
    """Set up what is missing, then run Asterisk and the service until Ctrl-C."""
    from hotline.service import HotlineService

    secrets, runtime = _prepare(settings)
    runtime.start()
    ast = settings.asterisk
    svc = settings.service
    click.echo(
        f"12348 hotline ready: call sip:{ast.service_numbers[0]}@{ast.bind}:{ast.sip_port} "
        f"from {', '.join(ast.trunk_addresses)} (carrier trunk, no registration); "
        f"agent desk http://{svc.bind}:{svc.port}/ . Ctrl-C stops."
    )
    try:
        service = HotlineService(
            settings, secrets, sounds_path=runtime.asterisk_path(runtime.sounds_dir)
        )
        asyncio.run(service.run())
    finally:
        runtime.stop()
        click.echo("stopped")


@main.command()
@click.pass_obj
def serve(settings: Settings) -> None:
    """Run only the service (Asterisk already running: `hotline asterisk start`)."""
    from hotline.asterisk.runtime import AsteriskRuntime
    from hotline.service import HotlineService

    secrets = load_or_create(settings.runtime_path)
    runtime = AsteriskRuntime(settings, secrets)
    service = HotlineService(
        settings, secrets, sounds_path=runtime.asterisk_path(runtime.sounds_dir)
    )
    asyncio.run(service.run())


@main.command()
@click.pass_obj
def setup(settings: Settings) -> None:
    """Install and configure everything `up` needs, without running it."""
    _prepare(settings)
    click.echo("set-up complete")


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(settings: Settings) -> None:
    """Migrate the database to the latest schema."""
    from hotline.db import current_revision, make_engine, migrate

    engine = make_engine(settings.database_url)
    migrate(engine)
    click.echo(f"database at revision {current_revision(engine)}")


@main.group(name="prompts")
def prompts_group() -> None:
    """Prompt audio."""


@prompts_group.command("generate")
@click.pass_obj
def prompts_generate(settings: Settings) -> None:
    """Speak missing prompts (espeak-ng + sox, 8 kHz WAV) into Asterisk's sounds directory."""
    _prepare(settings)


@main.command()
@click.pass_obj
def doctor(settings: Settings) -> None:
    """Check the installation and say how to fix each problem."""
    from hotline.doctor import run_checks

    problems = run_checks(settings)
    sys.exit(1 if problems else 0)


@main.command("config")
@click.pass_obj
def show_config(settings: Settings) -> None:
    """Print the effective configuration (secrets are kept in a separate file)."""
    click.echo(settings.model_dump_json(indent=2))


def _register_feature_groups() -> None:
    from acd.cli import seats
    from agent_desk.cli import users
    from hotline.asterisk.cli import asterisk
    from integrations.cli import partners
    from kpi.cli import register as register_kpi
    from recordings.models_fetch import models_cli
    from sim.cli import sim

    for group in (asterisk, seats, users, partners, models_cli, sim):
        main.add_command(group)
    register_kpi(main)  # report, staffing


_register_feature_groups()
