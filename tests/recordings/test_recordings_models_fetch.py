"""`hotline models fetch`: download, unpack, verify sha256, install atomically; a bad
download installs nothing. Served from a local file:// URL (no internet here)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hotline.config import Settings
from recordings.models_fetch import (
    MODELS,
    ModelFetchError,
    ModelSpec,
    default_model_path,
    fetch_model,
    models_cli,
)
from recordings.stt import check_model

FILES = {
    "am/final.mdl": b"acoustic model",
    "conf/model.conf": b"--beam=10\n",
    "graph/Gr.fst": b"grammar",
}


def _zip(path: Path, files: dict[str, bytes], top: str = "vosk-model-test") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"{top}/{name}", data)
    return path


def _spec(files: dict[str, bytes]) -> ModelSpec:
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    return ModelSpec("vosk-model-test", "file:///nonexistent.zip", sums)


def test_the_official_chinese_model_is_pinned() -> None:
    spec = MODELS["zh"]
    assert spec.name == "vosk-model-small-cn-0.22" and spec.url.endswith(f"{spec.name}.zip")
    assert set(spec.sha256) == {"am/final.mdl", "graph/Gr.fst", "graph/HCLr.fst",
                                "ivector/final.ie"}  # fmt: skip
    assert spec.sha256["am/final.mdl"].startswith("91eda2c0")


def test_fetch_verifies_and_installs(tmp_path: Path) -> None:
    url = _zip(tmp_path / "m.zip", FILES).as_uri()
    installed = fetch_model("zh", tmp_path / "models", url=url, spec=_spec(FILES))
    assert installed == tmp_path / "models" / "vosk-model-test"
    assert (installed / "am/final.mdl").read_bytes() == b"acoustic model"
    assert check_model(installed) == installed
    # Already there and verified: no download (the URL is not even read).
    assert fetch_model("zh", tmp_path / "models", url="file:///gone.zip", spec=_spec(FILES))
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["vosk-model-test"]


def test_a_wrong_checksum_installs_nothing(tmp_path: Path) -> None:
    url = _zip(tmp_path / "m.zip", {**FILES, "graph/Gr.fst": b"tampered"}).as_uri()
    with pytest.raises(ModelFetchError, match=r"graph/Gr.fst: sha256 .* expected"):
        fetch_model("zh", tmp_path / "models", url=url, spec=_spec(FILES))
    assert list((tmp_path / "models").iterdir()) == []


def test_bad_archives_and_downloads_are_clear_errors(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escape.txt", b"x")
    with pytest.raises(ModelFetchError, match="escapes"):
        fetch_model("zh", tmp_path / "a", url=evil.as_uri(), spec=_spec(FILES))
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ModelFetchError, match="not a zip"):
        fetch_model("zh", tmp_path / "b", url=(tmp_path / "junk.zip").as_uri(), spec=_spec(FILES))
    with pytest.raises(ModelFetchError, match="cannot download"):
        fetch_model("zh", tmp_path / "c", url=(tmp_path / "missing.zip").as_uri())
    with pytest.raises(ModelFetchError, match="no model known"):
        fetch_model("xx", tmp_path / "d")


def test_cli_reports_failure_without_a_traceback(tmp_path: Path) -> None:
    settings = Settings(runtime_dir=tmp_path)
    assert default_model_path(settings) == tmp_path.resolve() / "models/vosk-model-small-cn-0.22"
    url = _zip(tmp_path / "m.zip", FILES).as_uri()  # not the real model: checksums differ
    result = CliRunner().invoke(models_cli, ["fetch", "zh", "--url", url], obj=settings)
    assert result.exit_code == 1
    assert "failed verification" in result.output and "am/final.mdl" in result.output
    assert isinstance(models_cli, click.Group)
