"""Input and output of the OAuth endpoints (form-encoded, as RFC 6749 wants; JSON accepted)."""

from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.fields import SkipField, empty

from federation.services import GRANT_TYPE
from federation.tokens import ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_TYPE


class TokenExchangeInputSerializer(serializers.Serializer):
    grant_type = serializers.CharField(help_text=f"`{GRANT_TYPE}`")
    subject_token = serializers.CharField(
        max_length=8192, help_text="A Keyward key (or, for keyless CI, an OIDC ID token)."
    )
    subject_token_type = serializers.CharField(
        help_text=f"`{ACCESS_TOKEN_TYPE}` for a key, `{ID_TOKEN_TYPE}` for an ID token."
    )
    requested_token_type = serializers.CharField(
        required=False, allow_blank=True, help_text=f"Optional; only `{JWT_TYPE}`."
    )
    scope = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Space-separated; only narrower than the key's.",
    )
    audience = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=300,
        help_text="The service the token is for (its `aud`); default: Keyward itself.",
    )


class TokenExchangeOutputSerializer(serializers.Serializer):
    access_token = serializers.CharField(help_text="The JWT (ES256).")
    issued_token_type = serializers.CharField(help_text=f"`{JWT_TYPE}`")
    token_type = serializers.CharField(help_text="`Bearer`")
    expires_in = serializers.IntegerField(help_text="Seconds (at most 900).")
    scope = serializers.CharField()


class OAuthErrorOutputSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="RFC 6749 error code, e.g. invalid_grant.")
    error_description = serializers.CharField()


class TokenInputSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=8192)
    token_type_hint = serializers.CharField(required=False, allow_blank=True, max_length=100)


class IntrospectionOutputSerializer(serializers.Serializer):
    active = serializers.BooleanField()
    scope = serializers.CharField(required=False)
    exp = serializers.IntegerField(required=False)
    sub = serializers.CharField(required=False)
    tenant = serializers.CharField(required=False)
    client_id = serializers.CharField(required=False)
    token_type = serializers.CharField(required=False)
    key_id = serializers.IntegerField(required=False, allow_null=True)


def validated_fields(serializer_class, data) -> tuple[dict | None, str | None]:
    """Validate ``data`` as ``serializer_class(data=data).is_valid()`` does for a serializer of
    plain fields, with the class's declared fields themselves rather than a deep copy of them
    made for each request (the token exchange is on a bot's hot path). Return (the validated
    data, None), or (None, the name of the first field in error)."""
    if not isinstance(data, Mapping):
        return None, "body"
    validated = {}
    for name, field in serializer_class._declared_fields.items():
        try:
            validated[name] = field.run_validation(data.get(name, empty))
        except SkipField:
            continue
        except serializers.ValidationError:
            return None, name
    return validated, None
