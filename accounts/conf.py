"""The accounts app's settings (``KEYWARD_*``), read when used, with their defaults here."""

from common.conf import AppSettings

settings = AppSettings(
    {
        "BASE_URL": "http://127.0.0.1:8000",  # where links in e-mails point
        # Empty: derived from SECRET_KEY (see accounts/crypto.py).
        "FIELD_ENCRYPTION_KEY": "",
        "LOCK_AFTER_FAILURES": 50,  # consecutive failed attempts that lock an account
        "LOGIN_IP_RATE": "30/min",  # login attempts per client address
        "SESSION_MAX_AGE": 12 * 60 * 60,  # seconds a portal session lasts at most
        "SESSION_IDLE_TIMEOUT": 30 * 60,  # seconds a portal session may sit idle
        "SUDO_SECONDS": 15 * 60,  # seconds a second-factor check opens sensitive actions
    }
)
