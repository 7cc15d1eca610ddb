"""App settings (common/conf.py): read once, read again whenever a KEYWARD_* setting changes."""

from django.test import override_settings

from common.conf import AppSettings


def test_a_kept_value_follows_override_settings_in_and_out():
    conf = AppSettings({"TEST_RATE": "5/min"})
    assert conf.TEST_RATE == "5/min"  # kept from here on
    with override_settings(KEYWARD_TEST_RATE="7/min"):
        assert conf.TEST_RATE == "7/min"
    assert conf.TEST_RATE == "5/min"


def test_none_means_the_default():
    conf = AppSettings({"TEST_RATE": "5/min"})
    with override_settings(KEYWARD_TEST_RATE=None):
        assert conf.TEST_RATE == "5/min"
