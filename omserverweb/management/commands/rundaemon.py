"""``omserver serve`` runs this: the daemon, recording jobs through this project's models.

Django is set up here, where Django programs start; the daemon package itself
knows only the ``Recorder`` and the ``ScopeRecord`` it is handed.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from omserver.daemon.serve import serve
from omserverweb.access import keyscopes
from omserverweb.audit.chainkeys import keyring
from omserverweb.jobs import recorder


class Command(BaseCommand):
    help = "Run the master-control daemon until SIGTERM (same as `omserver serve`)."
    requires_system_checks = []  # the daemon checks its own settings, naming each

    def handle(self, *args, **options) -> None:
        keyring()  # the job chain's keys: made on first start, a broken file stops it here
        serve(settings.CONFIG, recorder, keyscopes)
