"""WSGI entry point for uWSGI; refuses to serve when the start-up checks fail."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omserverweb.settings")

application = get_wsgi_application()

from omserverweb.startup import assert_ready  # noqa: E402  (needs Django set up)

assert_ready()
