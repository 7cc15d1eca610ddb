"""Settings of the example reports service (environment only; no database needed)."""

import os

SECRET_KEY = os.environ.get("EXAMPLE_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = os.environ.get("EXAMPLE_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
ROOT_URLCONF = "example_service.urls"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
DATABASES: dict = {}
USE_TZ = True

KEYWARD_CLIENT = {
    "ISSUER": os.environ.get("KEYWARD_ISSUER", "http://127.0.0.1:8000"),
    "AUDIENCE": os.environ.get("KEYWARD_AUDIENCE", "https://reports.example.com"),
    "INTROSPECTION_KEY": os.environ.get("KEYWARD_INTROSPECTION_KEY", ""),
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["keyward_client.drf.KeywardJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["keyward_client.drf.HasKeywardScope"],
    "UNAUTHENTICATED_USER": None,
}
