"""``hotline models fetch zh``: download the official Vosk model and verify its checksums.

Owns where speech models come from and how we know they are the right files. The official
``vosk-model-small-cn-0.22`` zip is downloaded (streamed to a temporary file next to the
destination), unpacked with path checks (no member may escape the directory), and the sha256 of
the files that define the model (acoustic model, graphs, i-vector extractor; values measured
and listed in RUNTIME.md) is verified before the directory is moved into place, atomically.
A model already in place and verified is not downloaded again. Any mismatch is an error that
leaves nothing behind.

The service finds the model at ``speech.model_path`` or, when that is unset, at
``<runtime_dir>/models/<model name>`` (``default_model_path``). Without a model the hotline
runs on and records calls; transcription waits (see ``recordings.service``).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from hotline.config import Settings


@dataclass(frozen=True)
class ModelSpec:
    name: str
    url: str
    sha256: Mapping[str, str]  # path inside the model directory -> hex digest


MODELS: dict[str, ModelSpec] = {
    "zh": ModelSpec(
        name="vosk-model-small-cn-0.22",
        url="https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip",
        sha256={
            "am/final.mdl": "91eda2c04c4f599361cb92b0e5298ccdf6b3c7a1fa52bfcefcd2c4e07aa1c131",
            "graph/Gr.fst": "46d41a9b1723abccdcb354d731a5b58d87c060100d88ada1a3e31220f52b0434",
            "graph/HCLr.fst": "798af0d9ba6f2d727747f58e1e7b2305f8618bc8ea7f6c51beecd8a2c965b965",
            "ivector/final.ie": "c39d46fbff04efb7baa9660ae7a728b0e2f35a4a1250b56ed3a599e26956df86",
        },
    ),
}


class ModelFetchError(RuntimeError):
    """Download, unpacking or verification failed; nothing was installed."""


def default_model_path(settings: Settings, language: str = "zh") -> Path:
    """``speech.model_path`` if set, else where ``hotline models fetch`` puts the model."""
    if settings.speech.model_path is not None:
        return settings.speech.model_path
    return settings.runtime_path / "models" / MODELS[language].name


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify_model(model_dir: Path, expected: Mapping[str, str]) -> list[str]:
    """Problems found (missing files, wrong checksums); empty when the model is as expected."""
    problems = []
    for relative, digest in expected.items():
        path = model_dir / relative
        if not path.is_file():
            problems.append(f"{relative}: missing")
        elif (actual := sha256_file(path)) != digest:
            problems.append(f"{relative}: sha256 {actual}, expected {digest}")
    return problems


def _safe_extract(archive: zipfile.ZipFile, dest: Path) -> None:
    root = dest.resolve()
    for member in archive.infolist():
        target = (dest / member.filename).resolve()
        if not target.is_relative_to(root):
            raise ModelFetchError(f"archive member {member.filename!r} escapes the directory")
    archive.extractall(dest)


def _model_root(unpacked: Path) -> Path:
    """The directory in the archive that holds ``am/final.mdl``."""
    for candidate in [unpacked, *sorted(p for p in unpacked.iterdir() if p.is_dir())]:
        if (candidate / "am" / "final.mdl").is_file():
            return candidate
    raise ModelFetchError("the archive holds no Vosk model (no am/final.mdl)")


def fetch_model(
    language: str,
    dest_dir: Path,
    *,
    url: str | None = None,
    spec: ModelSpec | None = None,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download, verify and install the model for ``language`` under ``dest_dir``; its path.

    Blocking (a CLI command). ``url`` overrides the official address (a mirror or a local
    ``file://`` copy); the checksums are verified all the same.
    """
    if spec is None:
        if language not in MODELS:
            raise ModelFetchError(
                f"no model known for language {language!r} (known: {', '.join(MODELS)})"
            )
        spec = MODELS[language]
    dest_dir = Path(dest_dir)
    final = dest_dir / spec.name
    if final.is_dir() and not verify_model(final, spec.sha256):
        return final
    if final.exists():
        raise ModelFetchError(
            f"{final} exists but does not match the expected checksums: remove it and fetch again"
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".fetch-") as tmp:
        archive_path = Path(tmp) / "model.zip"
        try:
            with (
                urllib.request.urlopen(url or spec.url, timeout=timeout) as response,
                archive_path.open("wb") as out,
            ):
                total = response.headers.get("Content-Length")
                done = 0
                while block := response.read(1 << 20):
                    out.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, int(total) if total else None)
        except OSError as exc:
            raise ModelFetchError(f"cannot download {url or spec.url}: {exc}") from exc
        unpacked = Path(tmp) / "unpacked"
        try:
            with zipfile.ZipFile(archive_path) as archive:
                _safe_extract(archive, unpacked)
        except zipfile.BadZipFile as exc:
            raise ModelFetchError(f"the download is not a zip file: {exc}") from exc
        root = _model_root(unpacked)
        problems = verify_model(root, spec.sha256)
        if problems:
            raise ModelFetchError(
                "the downloaded model failed verification:\n  " + "\n  ".join(problems)
            )
        shutil.move(str(root), str(final))
    return final


@click.group("models")
def models_cli() -> None:
    """Speech-recognition models (语音识别模型)."""


@models_cli.command("fetch")
@click.argument("language", type=click.Choice(sorted(MODELS)))
@click.option("--url", default=None, help="download from here instead (a mirror, file://...)")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="directory to install into (default: <runtime_dir>/models)",
)
@click.pass_obj
def fetch_command(settings: Settings, language: str, url: str | None, dest: Path | None) -> None:
    """Download the official model for LANGUAGE and verify its sha256 values."""
    dest = dest or settings.runtime_path / "models"
    last = [-1]

    def progress(done: int, total: int | None) -> None:
        if total and (percent := done * 100 // total) >= last[0] + 10:
            last[0] = percent
            click.echo(f"  {percent}% of {total // (1 << 20)} MB", err=True)

    try:
        path = fetch_model(language, dest, url=url, progress=progress)
    except ModelFetchError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"model verified and installed at {path}")
    if settings.speech.model_path is None and path != default_model_path(settings, language):
        click.echo(f"set speech.model_path: {path} in the configuration to use it")
