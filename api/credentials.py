"""Public revocation by value, like GitHub's credential revocation API: whoever finds a Keyward
token anywhere may send it here, with no account and no key, and it stops working.

``POST /api/v1/credentials/revoke`` with ``{"credentials": [...]}`` (at most 1,000) always
answers 202 with the same body, whether a token is live, unknown, malformed or revoked already:
the request only parses the tokens and enqueues one task with their digests (keys/leaks.py),
which revokes each live key, records ``key.revoked`` (reason "reported by value") and tells the
key's owner and the tenant's owners and admins. So neither the answer nor its timing says
whether a token was live (with a task worker; the immediate backend runs the task in the
request). Rate-limited per address; a request carrying credentials (an Authorization header or
a portal session) is refused with 403, as GitHub does.
"""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from api.base import KeywardApiView
from api.errors import ERRORS
from api.schema import ErrorOutputSerializer
from common import ratelimit
from common.request import context_of
from keys import conf as keys_conf
from keys import leaks

ACCEPTED = (
    "Accepted: any live Keyward key among these credentials is revoked, and its owners are told."
)
CARRIES_CREDENTIALS = (
    "This endpoint takes no credentials: send the request without an Authorization header or "
    "a session cookie."
)
NOT_A_LIST = 'Send a JSON object {"credentials": [...]} with a list of strings.'
TOO_MANY = f"At most {leaks.MAX_CREDENTIALS} credentials per request: split them."
EMPTY = "Send at least one credential."


class CredentialsRevokeInputSerializer(serializers.Serializer):
    credentials = serializers.ListField(
        child=serializers.CharField(),
        min_length=1,
        max_length=leaks.MAX_CREDENTIALS,
        help_text="Tokens found exposed (at most 1,000), each as found.",
    )


class CredentialsRevokeOutputSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="The same text for every accepted request.")


class CarriesCredentials(exceptions.PermissionDenied):
    default_detail = CARRIES_CREDENTIALS
    default_code = "credentials_not_allowed"


class InvalidCredentials(exceptions.APIException):
    status_code = 400
    default_code = "invalid"


def _carries_credentials(request) -> bool:
    return "HTTP_AUTHORIZATION" in request.META or settings.SESSION_COOKIE_NAME in request.COOKIES


def _credentials(data) -> list[str]:
    credentials = data.get("credentials") if isinstance(data, dict) else None
    if not isinstance(credentials, list):
        raise InvalidCredentials(NOT_A_LIST)
    if len(credentials) > leaks.MAX_CREDENTIALS:
        raise InvalidCredentials(TOO_MANY, code="too_many_credentials")
    if not credentials:
        raise InvalidCredentials(EMPTY)
    if not all(isinstance(credential, str) for credential in credentials):
        raise InvalidCredentials(NOT_A_LIST)
    return credentials


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorOutputSerializer, description=description)


class CredentialsRevokeApi(KeywardApiView):
    """Revoke the Keyward keys among tokens found exposed; no authentication (see the module)."""

    # SECURITY: no authentication and no key throttle: the per-address rate below bounds it.
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    required_scopes: list[str] = []

    @extend_schema(
        operation_id="credentials_revoke",
        tags=["leaks"],
        auth=[],
        request=CredentialsRevokeInputSerializer,
        responses={
            202: CredentialsRevokeOutputSerializer,
            400: _error("invalid / too_many_credentials: not a list of at most 1,000 strings."),
            403: _error("credentials_not_allowed: the request carried credentials."),
            413: _error(ERRORS[413]),
            415: _error(ERRORS[415]),
            429: _error("throttled: too many requests from this address; see Retry-After."),
        },
        description=(
            "Always 202 with the same body, whether a token is live, unknown, malformed or "
            "already revoked: each live Keyward key among `credentials` is revoked irreversibly "
            '(`key.revoked`, reason "reported by value") and its owner and the tenant\'s owners '
            "and admins are e-mailed. No authentication: a request with an Authorization header "
            "or a session cookie is refused (403). Rate-limited per client address."
        ),
    )
    def post(self, request):
        data = request.data  # a body that is not acceptable JSON: 400, 413 or 415 first
        if _carries_credentials(request):
            raise CarriesCredentials()
        context = context_of(request)
        rate = keys_conf.settings.CREDENTIALS_REVOKE_RATE
        wait = ratelimit.hit("credentials-revoke", context.ip or "unknown", rate)
        if wait is not None:
            raise exceptions.Throttled(wait=wait)
        digests = leaks.credential_digests(_credentials(data))
        if digests:
            leaks.keys_revoke_reported.enqueue(
                digests,
                {
                    "ip": context.ip,
                    "user_agent": context.user_agent,
                    "request_id": context.request_id,
                },
            )
        return Response({"detail": ACCEPTED}, status=202)
