"""The base of every API v1 view: Bearer keys, scopes, the per-key throttle. Its audit event is
written for any DRF view by api/middleware.py."""

from rest_framework import exceptions
from rest_framework.views import APIView

from api.schema import KeywardAutoSchema

KEY_THROTTLED = "This key exceeded its request rate."


class KeywardApiView(APIView):
    """An API v1 view: Bearer keys, ``required_scopes``, per-key throttle.

    Subclasses declare ``required_scopes``: a list (``[]`` for any valid key) or a dict of HTTP
    method to list.
    """

    metadata_class = None  # OPTIONS answers 405: no unauthenticated introspection
    _throttle_checked = False  # DRF checks throttles again in initial(): count a request once
    schema = KeywardAutoSchema()

    @property
    def allowed_methods(self):
        # OPTIONS answers 405 (no metadata_class): the Allow header does not offer it.
        return [m for m in super().allowed_methods if m != "OPTIONS"]

    def check_permissions(self, request):
        # SECURITY: count the key's request before its scopes are checked, so that a key cannot
        # send refused requests (each one an audit event) faster than its rate.
        self.check_throttles(request)
        super().check_permissions(request)

    def check_throttles(self, request):
        if not self._throttle_checked:
            self._throttle_checked = True
            super().check_throttles(request)

    def throttled(self, request, wait):
        raise exceptions.Throttled(wait=wait, detail=KEY_THROTTLED)
