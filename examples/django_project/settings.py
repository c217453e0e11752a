"""Settings of the minimal Django example: only what the WhatsApp webhook needs.

    python examples/django_project/manage.py runserver 127.0.0.1:8000

WhatsApp settings come from `WHATSAPP_*` variables, exactly as for the Flask server (manage.py
also reads a `.env` file); see the README, "Flask server and Django REST Framework". To build
the service in code instead, set `WHATSAPP_SERVICE` to the import path of a `WebhookService`.
"""

import os

from connectors.whatsapp.core.limits import WEBHOOK_MAX_BODY_BYTES

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-example-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "").lower() in ("1", "true", "yes")
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")

ROOT_URLCONF = "examples.django_project.urls"
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Kept to show that the webhook view is exempt: Meta sends no CSRF token.
    "django.middleware.csrf.CsrfViewMiddleware",
]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

# Meta's webhook bodies may be up to 3 MB; Django's default cap is 2.5 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BODY_BYTES

REST_FRAMEWORK = {
    # No django.contrib.auth in this project: DRF must not build an AnonymousUser.
    "UNAUTHENTICATED_USER": None,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"connectors.whatsapp": {"handlers": ["console"], "level": "INFO"}},
}
