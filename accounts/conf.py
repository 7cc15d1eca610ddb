"""The accounts app's settings (``KEYWARD_*``), read when used, with their defaults here."""

from common.conf import AppSettings

settings = AppSettings(
    {
        # "background": e-mails about signing in (reset links, lock notices) go out from a
        # thread of their own, so no answer waits on the mail server; "request": in the request.
        "AUTH_MAIL": "background",
        "BASE_URL": "http://127.0.0.1:8000",  # where links in e-mails point
        # Encrypts the TOTP seeds (accounts/crypto.py). Empty: derived from SECRET_KEY
        # (HKDF-SHA256), so rotating SECRET_KEY then makes every authenticator unreadable.
        "FIELD_ENCRYPTION_KEY": "",
        # Consecutive failed attempts (passwords and codes) that lock an account: NIST SP
        # 800-63B's ceiling. Before it, passwords back off per (e-mail, address) (lockout.py).
        "LOCK_AFTER_FAILURES": 100,
        "LOGIN_IP_RATE": "30/min",  # login attempts per client address
        "PASSWORD_RESET_IP_RATE": "10/hour",  # reset requests per client address
        # Reset requests per e-mail address asked for, whether it has an account or not.
        "PASSWORD_RESET_ACCOUNT_RATE": "3/hour",
        "SESSION_MAX_AGE": 12 * 60 * 60,  # seconds a portal session lasts at most
        "SESSION_IDLE_TIMEOUT": 30 * 60,  # seconds a portal session may sit idle
        "SUDO_SECONDS": 15 * 60,  # seconds a second-factor check opens sensitive actions
    }
)
