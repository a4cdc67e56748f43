from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ModulesConfig(AppConfig):
    name = "omserverweb.modules"
    label = "modules"
    verbose_name = _("Task modules")
