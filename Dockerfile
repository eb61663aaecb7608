# syntax=docker/dockerfile:1
# Multi-stage: the builder has compilers and headers (mysqlclient builds against
# libmariadb); the runtime image has only the shared libraries and a non-root user.
# It installs from the same requirements.lock that 'make venv' uses.

FROM python:3.11-slim-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libmariadb-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.lock

FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 sentinel
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=sentinel.settings
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY --chown=sentinel:sentinel . .
# collectstatic needs settings but no services; a throwaway key keeps the
# production check (sentinel.E001) quiet for this one build step.
RUN DEBUG=false SECRET_KEY=build-only-not-a-secret-build-only-not-a-secret-xx \
    ALLOWED_HOSTS=build python manage.py collectstatic --noinput --verbosity 0
# Numeric (the uid useradd gave sentinel above), so a runtime can tell it is not root
# without reading /etc/passwd (e.g. Kubernetes runAsNonRoot).
USER 10001
EXPOSE 8000
# Threaded workers keep connections alive (nginx's upstream keepalive, and heartbeat
# pings from jobs that reuse a connection): a worker per core, eight requests each.
# benchmarks/heartbeats.py runs the web tier with these same worker options.
CMD ["gunicorn", "sentinel.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", \
     "--worker-class", "gthread", "--threads", "8", "--access-logfile", "-"]
