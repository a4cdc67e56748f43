"""1002 view recent logins: the last N lines of the authentication log.

Debian/Ubuntu write /var/log/auth.log, RHEL /var/log/secure; on journald-only
hosts the journal's auth and authpriv facilities stand in.
"""

NAME = "查看最新登录 View recent logins"
CAPTION = "The last N lines of the authentication log (logins, sudo, sshd)."
PARAMS = [
    {
        "name": "lines",
        "type": "int",
        "label": "lines",
        "default": 50,
        "min": 1,
        "max": 10000,
        "help": "how many of the newest lines to show",
    },
]
SETTINGS = {"log_files": ["/var/log/auth.log", "/var/log/secure"]}

SCRIPT = """
for file in "$@"; do
    if [ -r "$file" ]; then exec tail -n "$OM_LINES" -- "$file"; fi
done
exec journalctl --no-pager --quiet -n "$OM_LINES" SYSLOG_FACILITY=4 SYSLOG_FACILITY=10
"""


def run(ctx, params):
    ctx.shell(SCRIPT, args=ctx.settings["log_files"])
