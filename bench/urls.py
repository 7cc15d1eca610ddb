"""Keyward's own URLs (the real /api/v1/…, portal and audit pages) plus one probe per row.

The probes live under /api/ because the portal middleware sends any other path without a
verified session to the login page.
"""

from django.urls import path

from bench import probes
from config.urls import urlpatterns as product_urlpatterns

_keyward = probes.keyward_views()

# Django matches static routes in order, each a string comparison: the malformed row sits next
# to the baseline (one comparison more), the competitors before Keyward's auth and full rows.
urlpatterns = [
    path("api/bench/baseline/", probes.BaselineProbe.as_view()),
    path("api/bench/malformed/", _keyward["malformed"]),
    path("api/bench/drf_token/", probes.DrfTokenProbe.as_view()),
    path("api/bench/knox/", probes.KnoxProbe.as_view()),
    path("api/bench/api_key/", probes.ApiKeyProbe.as_view()),
    path("api/bench/auth/", _keyward["auth"]),
    path("api/bench/full/", _keyward["full"]),
    path("api/bench/unknown/", _keyward["full"]),
    path("api/bench/durability/", probes.durability),
    *product_urlpatterns,
]
