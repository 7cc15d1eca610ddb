"""keyward.E030: DEBUG off without the static files manifest is refused at start-up, not met
as a 500 on every page."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.checks import check_static_manifest

MANIFEST_STORAGE = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def production_static(settings, tmp_path):
    settings.DEBUG = False
    settings.STORAGES = MANIFEST_STORAGE
    settings.STATIC_ROOT = tmp_path
    return tmp_path


def test_a_missing_manifest_is_an_error_that_says_how_to_fix_it(production_static):
    [error] = check_static_manifest(None)
    assert error.id == "keyward.E030" and error.is_serious()
    assert str(production_static / "staticfiles.json") in error.msg
    assert "DEBUG=false python manage.py collectstatic" in error.hint


def test_a_corrupt_manifest_is_an_error(production_static):
    (production_static / "staticfiles.json").write_text("not json")
    [error] = check_static_manifest(None)
    assert error.id == "keyward.E031"


def test_a_manifest_written_by_collectstatic_passes(production_static):
    (production_static / "staticfiles.json").write_text('{"paths": {}, "version": "1.1"}')
    assert check_static_manifest(None) == []


def test_debug_or_plain_storage_needs_no_manifest(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.DEBUG = True
    settings.STORAGES = MANIFEST_STORAGE
    assert check_static_manifest(None) == []
    settings.DEBUG = False
    settings.STORAGES = {
        **MANIFEST_STORAGE,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    assert check_static_manifest(None) == []


def _manage(*args, tmp_path, debug: str):
    env = {
        "PATH": os.environ["PATH"],
        "DEBUG": debug,
        "SECRET_KEY": "x" * 50,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=env, capture_output=True, text=True, cwd=ROOT
    )


def test_collectstatic_under_the_development_env_then_debug_off_fails_the_check(tmp_path):
    collected = _manage("collectstatic", "--noinput", tmp_path=tmp_path, debug="true")
    assert collected.returncode == 0, collected.stderr
    assert (tmp_path / "static" / "css" / "keyward.css").is_file()
    assert not (tmp_path / "static" / "staticfiles.json").exists()

    checked = _manage("check", tmp_path=tmp_path, debug="false")
    assert checked.returncode != 0
    assert "keyward.E030" in checked.stderr
    assert "collectstatic" in checked.stderr
