"""The bench's settings plus the federation rows' probes (bench/federation_urls.py) and the
client package's settings (python -m bench.federation)."""

from bench.settings import *  # noqa: F403

ROOT_URLCONF = "bench.federation_urls"
BENCH_ISSUER = "http://bench.keyward.example"
BENCH_AUDIENCE = "https://bench-service.example"
KEYWARD_JWT_ISSUER = BENCH_ISSUER
KEYWARD_CLIENT = {"ISSUER": BENCH_ISSUER, "AUDIENCE": BENCH_AUDIENCE}
