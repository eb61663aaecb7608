"""Signing in: two-factor sign-in (TOTP and recovery codes through django-otp) and the
audit trail of who changed what (django-auditlog)."""
