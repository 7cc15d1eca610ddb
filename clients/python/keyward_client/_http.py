"""The one HTTP helper: the standard library only, short timeouts, JSON in and out."""

import json
import urllib.parse
import urllib.request

TIMEOUT = 3.0  # seconds


def get_json(url: str, *, timeout: float = TIMEOUT) -> dict:
    """GET ``url`` and return its JSON object; raise OSError or ValueError."""
    _check_scheme(url)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - checked
        return _object(response.read())


def post_form(url: str, form: dict, *, bearer: str = "", timeout: float = TIMEOUT) -> dict:
    """POST ``form`` (urlencoded) to ``url``; return the JSON object answered."""
    _check_scheme(url)
    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    body = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - checked
        return _object(response.read())


def _check_scheme(url: str) -> None:
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise ValueError(f"not an http(s) URL: {url!r}")


def _object(raw: bytes) -> dict:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value
