"""1007 restart service: restart a named service with each host's service manager.

A service lists candidate unit names (Debian/Ubuntu first, then RHEL); the
first step finds which one each host has, the second restarts it there.
"""

NAME = "重启进程服务 Restart service"
CAPTION = "Restart a service (systemd unit or init script) on the hosts."
PARAMS = [
    {
        "name": "service",
        "type": "choice",
        "label": "service",
        "required": True,
        "choices": ["nginx", "haproxy", "mysql", "apache", "redis", "php-fpm", "cron", "rsyslog"],
        "help": "which service to restart",
    },
]
EXCLUSIVE = True  # two restarts of one service on one host must not overlap
SETTINGS = {
    "services": {
        "nginx": ["nginx"],
        "haproxy": ["haproxy"],
        "mysql": ["mariadb", "mysql", "mysqld"],
        "apache": ["apache2", "httpd"],
        "redis": ["redis-server", "redis"],
        "php-fpm": ["php-fpm", "php8.4-fpm", "php8.2-fpm"],
        "cron": ["cron", "crond"],
        "rsyslog": ["rsyslog"],
    },
}

FIND = """
for name in "$@"; do
    if [ -x "/etc/init.d/$name" ] || systemctl cat -- "$name.service" >/dev/null 2>&1; then
        echo "$name"
        exit 0
    fi
done
echo "none of these services is installed: $*" >&2
exit 1
"""


def run(ctx, params):
    found = ctx.shell(FIND, args=ctx.settings["services"][params["service"]])
    by_name = {}
    for host, result in found.items():
        if result.ok:
            by_name.setdefault(result.stdout.strip(), []).append(host)
    for name, hosts in sorted(by_name.items()):
        ctx.service(name, "restart", hosts=hosts)
