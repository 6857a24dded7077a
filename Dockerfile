# Orrery production image: daphne web server or Dramatiq worker, chosen by the command.
# Configuration comes from the environment at run time; see .env.example.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so code changes reuse this layer.
# ([tool.setuptools] packages = [] : `pip install .` installs only the dependencies.)
COPY pyproject.toml ./
RUN pip install . \
    && rm -rf build *.egg-info

COPY . .

# Static files are collected into the image (STATIC_ROOT, outside var/ so a volume
# mounted on var/ cannot hide them; served by WhiteNoise).
# The dummy SECRET_KEY and DATABASE_URL exist only for this step: with DATABASE_URL set,
# settings do not start the embedded PostgreSQL, and collectstatic never connects.
RUN SECRET_KEY=collectstatic-only-dummy-key-not-used-at-runtime \
    ORRERY_MASTER_KEYS=MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA= DATABASE_URL=postgres://x@localhost/x \
        python manage.py collectstatic --noinput --verbosity 0

# Code and static files stay root-owned and read-only to the app user; only var/ (and
# var/media, the default upload folder, usually a shared volume) is writable.
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home orrery \
    && mkdir -p var/media \
    && chown orrery:orrery var var/media

USER orrery

EXPOSE 8000

CMD ["python", "manage.py", "serve", "--no-migrate", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
