"""Signing in with a second factor: TOTP authenticator apps and one-time recovery codes,
through django-otp (its devices, throttling of wrong codes and verified sessions)."""
