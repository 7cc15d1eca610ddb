"""HTTP helpers every portal app uses."""

from django.utils.cache import patch_cache_control


def no_store(response):
    """Keep ``response`` out of every cache and the back/forward history: it shows a secret."""
    # SECURITY: pages with a plaintext token, a setup key or backup codes: no cache, no copy.
    patch_cache_control(response, no_store=True, no_cache=True, private=True)
    return response
