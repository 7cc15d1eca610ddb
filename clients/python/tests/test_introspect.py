import pytest
from keyward_client import introspection as module
from keyward_client.introspection import introspect


@pytest.fixture(autouse=True)
def _forget():
    module.forget()
    yield
    module.forget()


class Keyward:
    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def __call__(self, url, form, *, bearer=""):
        self.calls.append((url, form, bearer))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def ask(keyward, token="kws_x", now=1000.0, **options):  # noqa: S107
    return introspect(
        token,
        url="https://k/oauth/introspect",
        service_key="kws_rs",
        post=keyward,
        clock=lambda: now,
        **options,
    )


def test_an_answer_is_cached_briefly_and_keyed_by_token():
    keyward = Keyward({"active": True, "scope": "a:b", "exp": 5000})
    assert ask(keyward)["active"] is True
    assert ask(keyward, now=1020.0)["scope"] == "a:b"
    assert len(keyward.calls) == 1
    assert keyward.calls[0] == ("https://k/oauth/introspect", {"token": "kws_x"}, "kws_rs")
    ask(keyward, now=1031.0)
    assert len(keyward.calls) == 2
    ask(keyward, token="kws_other", now=1031.0)
    assert len(keyward.calls) == 3


def test_never_cached_past_the_token_expiry():
    keyward = Keyward({"active": True, "exp": 1005})
    ask(keyward)
    ask(keyward, now=1006.0)
    assert len(keyward.calls) == 2


@pytest.mark.parametrize("answer", [{"active": False}, {"active": "yes"}, {}, OSError("down")])
def test_anything_but_active_true_is_inactive(answer):
    assert ask(Keyward(answer)) == {"active": False}
