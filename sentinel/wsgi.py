"""The web tier's WSGI application: Django, with the heartbeat ping endpoint in front
of it (``monitors.pingapp``: ``/ping/`` never enters Django's middleware)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sentinel.settings")
django_application = get_wsgi_application()

# After Django's set-up: the ping endpoint reads the settings and the monitor models.
from monitors.pingapp import with_ping_path  # noqa: E402

application = with_ping_path(django_application)
