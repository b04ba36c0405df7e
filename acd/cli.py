"""``hotline seats``: manage seat lawyers' seats (SIP credentials, skills, region)."""

from __future__ import annotations

import json
import sys

import click

from acd import seats as seat_store
from hotline.config import Settings
from hotline.db import make_engine, migrate


def _engine(settings: Settings):
    engine = make_engine(settings.database_url)
    migrate(engine)
    return engine


def _push_to_asterisk(settings: Settings, engine) -> str:
    """Re-render the seats into Asterisk's configuration; reload it when it runs."""
    from hotline.asterisk.reload import push_seats
    from hotline.asterisk.runtime import AsteriskRuntime
    from hotline.secrets import load_or_create

    runtime = AsteriskRuntime(settings, load_or_create(settings.runtime_path))
    return push_seats(runtime, seat_store.credentials(engine))


@click.group()
def seats() -> None:
    """Seat lawyers' seats (坐席)."""


@seats.command("add")
@click.argument("seat_id")
@click.option("--skills", default="", help="e.g. labor:3,family:2 (topic:level, 1 = lowest)")
@click.option("--region", default="default", show_default=True)
@click.option("--name", "display_name", default="", help="display name, e.g. 张律师")
@click.option("--wrap-up", "wrap_up_s", type=float, default=None, help="话后处理 seconds")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_obj
def add(
    settings: Settings,
    seat_id: str,
    skills: str,
    region: str,
    display_name: str,
    wrap_up_s: float | None,
    as_json: bool,
) -> None:
    """Create a seat and print its SIP credentials (the password is shown only now)."""
    engine = _engine(settings)
    try:
        new = seat_store.add_seat(
            engine,
            seat_id,
            skills=seat_store.parse_skills(skills),
            region=region,
            display_name=display_name,
            wrap_up_s=wrap_up_s,
        )
    except seat_store.SeatError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    ast = settings.asterisk
    registrar = f"sip:{ast.bind}:{ast.sip_port}"
    note = _push_to_asterisk(settings, engine)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "seat_id": new.seat_id,
                    "sip_user": new.seat_id,
                    "password": new.password,
                    "registrar": registrar,
                    "realm": "hotline",
                }
            )
        )
        return
    click.echo(f"seat {new.seat_id} created ({note})")
    click.echo(f"  SIP user:  {new.seat_id}")
    click.echo(f"  password:  {new.password}   (shown once)")
    click.echo(f"  registrar: {registrar}  realm hotline")


@seats.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_(settings: Settings, as_json: bool) -> None:
    """The active seats and their skills."""
    rows = seat_store.list_seats(_engine(settings))
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "seat_id": r.seat_id,
                        "name": r.display_name,
                        "skills": r.skills,
                        "region": r.region,
                    }
                    for r in rows
                ],
                ensure_ascii=False,
            )
        )
        return
    for row in rows:
        skills = ",".join(f"{k}:{v}" for k, v in row.skills.items())
        click.echo(f"{row.seat_id:12} {row.display_name:12} {row.region:10} {skills}")
