"""System checks for Keyward's own settings, registered in ``KeysConfig.ready()``."""

from collections.abc import Mapping
from typing import Any

from django.core.checks import CheckMessage, Error

from keys import conf
from keys.scopes import BUILTIN_SCOPES, SCOPE_NAME_PATTERN
from keys.tokens import PREFIX_PATTERN


def check_keyward_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Reject a malformed ``KEYWARD_TOKEN_PREFIX`` or ``KEYWARD_EXTRA_SCOPES``."""
    errors: list[CheckMessage] = []
    prefix = conf.configured("TOKEN_PREFIX")
    if not isinstance(prefix, str) or not PREFIX_PATTERN.fullmatch(prefix):
        errors.append(
            Error(
                f"KEYWARD_TOKEN_PREFIX {prefix!r} is not a valid token prefix.",
                hint="Use 1 to 8 lowercase ASCII letters or digits, starting with a letter.",
                id="keyward.E001",
            )
        )
    extra = conf.configured("EXTRA_SCOPES")
    if not isinstance(extra, Mapping):
        errors.append(
            Error(
                "KEYWARD_EXTRA_SCOPES must be a dict of scope name to description.",
                id="keyward.E002",
            )
        )
        return errors
    for name, description in extra.items():
        if not isinstance(name, str) or not SCOPE_NAME_PATTERN.fullmatch(name):
            errors.append(
                Error(
                    f"KEYWARD_EXTRA_SCOPES name {name!r} is not a valid scope name.",
                    hint="Use 'resource:action' in lowercase, e.g. 'billing:read'.",
                    id="keyward.E003",
                )
            )
        elif name in BUILTIN_SCOPES:
            errors.append(
                Error(
                    f"KEYWARD_EXTRA_SCOPES redefines the built-in scope {name!r}.",
                    id="keyward.E004",
                )
            )
        if not isinstance(description, str) or not description.strip():
            errors.append(
                Error(
                    f"KEYWARD_EXTRA_SCOPES description of {name!r} must be a non-empty string.",
                    id="keyward.E005",
                )
            )
    return errors


def check_leak_report_keys(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Reject a ``KEYWARD_LEAK_REPORT_PUBLIC_KEYS`` entry that is not a P-256 public key PEM."""
    from keys.leaks import load_public_key

    keys = conf.configured("LEAK_REPORT_PUBLIC_KEYS")
    if not isinstance(keys, Mapping):
        return [
            Error(
                "KEYWARD_LEAK_REPORT_PUBLIC_KEYS must be a JSON object of key id to PEM.",
                id="keyward.E006",
            )
        ]
    errors: list[CheckMessage] = []
    for key_id, pem in keys.items():
        try:
            if not isinstance(pem, str):
                raise ValueError
            load_public_key(pem)
        except ValueError:
            errors.append(
                Error(
                    f"KEYWARD_LEAK_REPORT_PUBLIC_KEYS[{key_id!r}] is not the PEM of an ECDSA "
                    "P-256 public key.",
                    id="keyward.E007",
                )
            )
    return errors
