"""1001 view system log: the last N lines of the first system log file that exists.

Debian/Ubuntu write /var/log/syslog, RHEL /var/log/messages; hosts with
neither (journald only) get the journal's last N lines.
"""

NAME = "查看系统日志 View system log"
CAPTION = "The last N lines of the system log (syslog, messages, or the journal)."
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
SETTINGS = {"log_files": ["/var/log/syslog", "/var/log/messages"]}

SCRIPT = """
for file in "$@"; do
    if [ -r "$file" ]; then exec tail -n "$OM_LINES" -- "$file"; fi
done
exec journalctl --no-pager --quiet -n "$OM_LINES"
"""


def run(ctx, params):
    ctx.shell(SCRIPT, args=ctx.settings["log_files"])
