"""``hotline partners ...``: the partner list, shared secrets, and the dead-letter queue.

``ctx.obj`` is the loaded ``hotline.config.Settings`` (set by the ``hotline`` group). Replaying a
dead letter puts its delivery back in the outbox, due now: the running service sends it within
its poll interval; ``--now`` also makes one attempt from this process at once (safe beside the
service: a delivery is claimed before it is sent, so it is never sent twice at the same time).
"""

from __future__ import annotations

import asyncio
import json

import click
from sqlalchemy import Engine

from hotline.config import ConfigError, Settings
from hotline.db import make_engine, migrate
from integrations import delivery
from integrations.config import IntegrationsConfig, config_path, load_for_runtime, partner_secrets


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):
        raise click.UsageError("internal error: settings not loaded")
    return settings


def _config(settings: Settings) -> IntegrationsConfig:
    try:
        return load_for_runtime(settings.runtime_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _engine(settings: Settings) -> Engine:
    engine = make_engine(settings.database_url)
    migrate(engine)
    return engine


@click.group("partners")
def partners() -> None:
    """合作热线（110、12345、12355、12368）与工单交换 / partner hotlines and work-order exchange."""


@partners.command("list")
@click.pass_context
def list_partners(ctx: click.Context) -> None:
    """列出合作方 / list the configured partners."""
    settings = _settings(ctx)
    config = _config(settings)
    click.echo(f"# {config_path(settings.runtime_path)}")
    for p in config.partners:
        inbound = "推送:开" if p.inbound else "推送:关"
        click.echo(f"{p.id}\t{p.name}\t{inbound}\t{p.outbound_url or '-'}")


@partners.command("secret")
@click.argument("partner_id")
@click.pass_context
def show_secret(ctx: click.Context, partner_id: str) -> None:
    """显示（必要时生成）合作方的共享密钥 / print a partner's shared HMAC secret."""
    settings = _settings(ctx)
    config = _config(settings)
    partner = config.partner(partner_id)
    if partner is None:
        raise click.ClickException(f"未知的合作方 / unknown partner {partner_id}")
    secret = partner_secrets(settings.runtime_path, [partner])[partner.id]
    click.echo(secret.decode())


@partners.group("dead-letters")
def dead_letters() -> None:
    """死信（投递失败的通知）/ deliveries that ran out of attempts."""


@dead_letters.command("list")
@click.option("--all", "include_replayed", is_flag=True, help="include replayed ones")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.pass_context
def list_dead_letters(ctx: click.Context, include_replayed: bool, as_json: bool) -> None:
    """列出死信 / list dead letters (not yet replayed, unless --all)."""
    engine = _engine(_settings(ctx))
    try:
        letters = delivery.dead_letters(engine, include_replayed=include_replayed)
    finally:
        engine.dispose()
    if not letters:
        if not as_json:
            click.echo("没有死信 / no dead letters")
        return
    for letter in letters:
        item = {
            "id": letter.id,
            "delivery_id": letter.delivery_id,
            "partner": letter.partner,
            "kind": letter.kind,
            "attempts": letter.attempts,
            "dead_at": letter.dead_at.isoformat(),
            "replayed_at": letter.replayed_at.isoformat() if letter.replayed_at else None,
            "last_error": letter.last_error,
        }
        if as_json:
            click.echo(json.dumps(item, ensure_ascii=False))
        else:
            click.echo(
                f"{letter.id}\t{letter.partner}\t{letter.kind}\t{letter.attempts} 次\t"
                f"{item['dead_at']}\t{letter.last_error or ''}"
            )


@dead_letters.command("replay")
@click.argument("dead_letter_id", type=int)
@click.option("--now", "attempt_now", is_flag=True, help="also try once from this process")
@click.pass_context
def replay_dead_letter(ctx: click.Context, dead_letter_id: int, attempt_now: bool) -> None:
    """重新投递死信 / put a dead letter back in the delivery queue."""
    settings = _settings(ctx)
    engine = _engine(settings)
    try:
        try:
            delivery_id = delivery.replay(engine, dead_letter_id)
        except delivery.ReplayError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"死信 {dead_letter_id} 已重新排队 / requeued as delivery {delivery_id}")
        if attempt_now:
            config = _config(settings)
            secrets = partner_secrets(settings.runtime_path, config.partners)
            status = asyncio.run(_attempt_once(engine, config, secrets, delivery_id))
            click.echo(f"delivery {delivery_id}: {status or 'held by another process'}")
            if status == delivery.DEAD:
                raise SystemExit(1)
    finally:
        engine.dispose()


async def _attempt_once(
    engine: Engine, config: IntegrationsConfig, secrets: dict[str, bytes], delivery_id: int
) -> str | None:
    worker = delivery.DeliveryWorker(engine, config, secrets)
    try:
        return await worker.deliver(delivery_id)
    finally:
        await worker.close()
