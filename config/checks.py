"""System checks for how the installation is deployed, registered in
``KeywardAdminConfig.ready()`` (``config`` has no other app)."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.checks import CheckMessage, Error
from django.core.files.storage import storages
from django.utils.module_loading import import_string

NO_MANIFEST = (
    "DEBUG is off and the static files manifest {path} is missing: every page that links a "
    "static file would answer 500."
)
NO_MANIFEST_HINT = (
    "Run collectstatic with the production environment (DEBUG=false): "
    "`DEBUG=false python manage.py collectstatic --noinput`. Under DEBUG=true (the development "
    ".env) collectstatic copies the files but writes no manifest."
)
BAD_MANIFEST = "The static files manifest {path} cannot be read: {error}"


def check_static_manifest(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Refuse to run with DEBUG off when the hashed static files' manifest is missing: with
    whitenoise's CompressedManifestStaticFilesStorage every ``{% static %}`` would raise."""
    if settings.DEBUG:
        return []
    backend = import_string(settings.STORAGES["staticfiles"]["BACKEND"])
    if not issubclass(backend, ManifestFilesMixin):
        return []
    path = Path(settings.STATIC_ROOT or "") / backend.manifest_name
    try:
        # The storage reads its manifest when it is made: a corrupt one raises ValueError.
        storage = storages["staticfiles"]
        content = storage.read_manifest()
    except ValueError as error:
        return [
            Error(
                BAD_MANIFEST.format(path=path, error=error),
                hint=NO_MANIFEST_HINT,
                id="keyward.E031",
            )
        ]
    if content is None:
        return [Error(NO_MANIFEST.format(path=path), hint=NO_MANIFEST_HINT, id="keyward.E030")]
    return []
