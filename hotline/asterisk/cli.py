"""``hotline asterisk ...``: install, start (foreground), stop, status and CLI pass-through for
the configured Asterisk instance. ``ctx.obj`` is the loaded ``hotline.config.Settings``.

Messages for the operator are Chinese first, with the English term where it helps searching.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

import click

from hotline.asterisk.render import RenderError
from hotline.asterisk.runtime import AsteriskError, AsteriskRuntime
from hotline.config import Settings
from hotline.secrets import load_or_create


def _runtime(ctx: click.Context) -> AsteriskRuntime:
    settings = ctx.obj
    if not isinstance(settings, Settings):
        raise click.UsageError("internal error: settings not loaded")
    # Plain progress lines on stderr unless the caller configured logging already.
    if not logging.getLogger().handlers:
        logging.basicConfig(level=settings.log_level, format="%(message)s", stream=sys.stderr)
    try:
        return AsteriskRuntime(settings, load_or_create(settings.runtime_path))
    except AsteriskError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("asterisk")
def asterisk() -> None:
    """管理 Asterisk（安装、启动、停止、状态） / manage the Asterisk instance."""


@asterisk.command()
@click.pass_context
def install(ctx: click.Context) -> None:
    """安装 Asterisk（首次构建 Debian 根目录，约 1 分钟） / install Asterisk."""
    runtime = _runtime(ctx)
    try:
        runtime.install()
    except AsteriskError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Asterisk {runtime.version} 已就绪 / ready ({runtime.mode}: {runtime.root})")


@asterisk.command()
@click.pass_context
def start(ctx: click.Context) -> None:
    """前台运行 Asterisk，按 Ctrl-C 停止 / run Asterisk in the foreground until Ctrl-C.

    Seats are not configured here: `hotline up` renders them from the database.
    """
    runtime = _runtime(ctx)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # SIGINT explicitly too: a process started in the background inherits it ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        runtime.install()
        runtime.render_config()
        runtime.start()
        click.echo(f"Asterisk 运行中 / running (pid {runtime.pid}); 按 Ctrl-C 停止 / Ctrl-C stops")
        assert runtime.process is not None
        code = runtime.process.wait()
        raise click.ClickException(
            f"Asterisk 意外退出 / exited unexpectedly (code {code}); see {runtime.console_log}"
        )
    except KeyboardInterrupt:
        click.echo("正在停止 Asterisk / stopping Asterisk")
    except (AsteriskError, RenderError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        runtime.stop()


@asterisk.command()
@click.pass_context
def stop(ctx: click.Context) -> None:
    """停止 Asterisk / stop the running instance."""
    runtime = _runtime(ctx)
    if not runtime.status().running:
        click.echo("Asterisk 未运行 / not running")
        return
    runtime.stop()
    click.echo("Asterisk 已停止 / stopped")


@asterisk.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """显示 Asterisk 状态 / show whether Asterisk runs, its version and pid."""
    runtime = _runtime(ctx)
    state = runtime.status()
    if state.running:
        click.echo(f"运行中 / running: Asterisk {state.version}, pid {state.pid}")
    else:
        click.echo(f"未运行 / not running (installed: {state.version or 'no'})")
        ctx.exit(3)


@asterisk.command("cli")
@click.argument("command", nargs=-1, required=True)
@click.pass_context
def cli_command(ctx: click.Context, command: tuple[str, ...]) -> None:
    """执行 Asterisk CLI 命令 / run an Asterisk CLI command, e.g. `pjsip show endpoints`."""
    runtime = _runtime(ctx)
    try:
        click.echo(runtime.cli(" ".join(command)), nl=False)
    except AsteriskError as exc:
        raise click.ClickException(str(exc)) from exc
