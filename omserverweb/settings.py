"""Django settings, all read from ``omserver.config`` (environment or TOML file).

Nothing secret lives here: the embedded default generates its secret key into
the data folder on first start, and production sets ``OMSERVER_WEB_SECRET_KEY``.
"""

from __future__ import annotations

from datetime import timedelta

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from omserver import config as omconfig
from omserverweb.database import database_settings
from omserverweb.lockout import LOCKOUT_PARAMETERS
from omserverweb.request_limits import import_request_limit
from omserverweb.secrets import load_or_create_secret_key

try:
    CONFIG = omconfig.load()
except omconfig.ConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from exc

BASE_DIR = omconfig.BASE_DIR
DATA_DIR = CONFIG.data_dir
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = CONFIG["web.debug"]
SECRET_KEY = CONFIG["web.secret_key"] or load_or_create_secret_key(DATA_DIR / "secret_key")
ALLOWED_HOSTS = CONFIG["web.allowed_hosts"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "omserverweb",
    "omserverweb.inventory",
    "omserverweb.modules",
    "omserverweb.jobs",
    "omserverweb.audit",
    "omserverweb.access",
    "omserverweb.console",
    "omserverweb.apitokens",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
]

MIDDLEWARE = [
    # First, so that every answer (a 503, a 413, a redirect, a CSRF refusal) is marked no-store.
    "omserverweb.headers.NoStoreMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # A body larger than its view takes is a 413 before anything (CSRF's check) reads it.
    "omserverweb.request_limits.BodySizeLimitMiddleware",
    # A view that meets the database (or a daemon) down answers a plain 503.
    "omserverweb.outages.DependencyDownMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a login that axes refused into omserverweb.lockout's 429 page; keep it last.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "omserverweb.urls"
WSGI_APPLICATION = "omserverweb.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "omserverweb.console.context_processors.statuses",
            ],
        },
    },
]

try:
    DATABASES = {"default": database_settings(CONFIG["database.url"], DATA_DIR)}
except ValueError as exc:
    raise ImproperlyConfigured(f"{omconfig.env_name('database.url')}: {exc}") from exc
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (omserverweb/lockout.py): axes' backend first refuses a locked login.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = CONFIG["web.login_failure_limit"]
AXES_COOLOFF_TIME = timedelta(minutes=CONFIG["web.login_cooloff_minutes"])
AXES_LOCKOUT_PARAMETERS = LOCKOUT_PARAMETERS[CONFIG["web.login_lockout_by"]]
AXES_LOCKOUT_CALLABLE = "omserverweb.lockout.locked_out"
# A lock ends when the page says, however often the login is tried meanwhile.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success resets nothing: counters are per user and per address, and one good
# account must not wipe an address's failures against another.
AXES_RESET_ON_SUCCESS = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# Behind nginx, REMOTE_ADDR is the client's (uwsgi_params); no forwarded header is trusted.
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "omserverweb" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

# Behind the shipped nginx site, which terminates TLS, redirects HTTP and sets HSTS.
if CONFIG["web.https"]:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Only this site's own files run, style and load: no inline script, handler or style
# (templates keep theirs in static files), no plugins, no framing, no foreign forms.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so that an anonymous call reads 401 with WWW-Authenticate.
        "omserverweb.apitokens.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "omserverweb.api.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "omserverweb.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "omserverweb.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "omserverweb.api.views.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OMServer API",
    "DESCRIPTION": "Run task modules on servers; read inventory, modules and job history.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "omserverweb.jobs.models.JOB_STATUS_CHOICES",
        "HostStatusEnum": "omserverweb.jobs.models.HOST_STATUS_CHOICES",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "omserverweb.api.openapi.add_error_responses",
    ],
}

AUDIT_RETENTION_DAYS = CONFIG["audit.retention_days"]
# Outside the database: the hash chains' keys, and the chain heads audit_verify last saw.
AUDIT_CHAIN_KEY_FILE = CONFIG["audit.chain_key_file"] or str(DATA_DIR / "chain-keys.json")
AUDIT_CHECKPOINT_FILE = CONFIG["audit.checkpoint_file"] or str(DATA_DIR / "chain-checkpoint.json")

# Request bodies (omserverweb/request_limits.py): Django's own limits sit at the
# largest a view takes, so that the middleware's 413 naming the limit answers first.
MAX_JSON_DEPTH = CONFIG["web.max_json_depth"]
MAX_BODY_BYTES = CONFIG["web.max_body_bytes"]
MAX_IMPORT_BYTES = CONFIG["web.max_import_bytes"]
AUDIT_MAX_BATCH_BYTES = CONFIG["audit.max_batch_bytes"]
DATA_UPLOAD_MAX_MEMORY_SIZE = FILE_UPLOAD_MAX_MEMORY_SIZE = max(
    MAX_BODY_BYTES, import_request_limit(MAX_IMPORT_BYTES), AUDIT_MAX_BATCH_BYTES
)

# The web console is one client of the daemon, with its own key.
DAEMON_ADDRESS = CONFIG["daemon.address"]
DAEMON_CLIENT_ID = CONFIG["daemon.client_id"]
DAEMON_CLIENT_KEY = CONFIG["daemon.client_key"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "omserverweb": {"handlers": ["console"], "level": "INFO"},
        # Every refused (403) or failed request leaves a line, with DEBUG off too.
        "django.request": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
