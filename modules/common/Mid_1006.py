"""1006 view app config: print the configuration file of a named service.

Each service lists candidate paths (Debian/Ubuntu first, then RHEL); each host
shows the first that exists there.
"""

NAME = "查看应用配置 View application config"
CAPTION = "Show the main configuration file of a service."
PARAMS = [
    {
        "name": "service",
        "type": "choice",
        "label": "service",
        "required": True,
        "choices": ["nginx", "haproxy", "mysql", "apache", "redis", "ssh"],
        "help": "whose configuration to show",
    },
]
SETTINGS = {
    "configs": {
        "nginx": ["/etc/nginx/nginx.conf"],
        "haproxy": ["/etc/haproxy/haproxy.cfg"],
        "mysql": ["/etc/mysql/my.cnf", "/etc/my.cnf"],
        "apache": ["/etc/apache2/apache2.conf", "/etc/httpd/conf/httpd.conf"],
        "redis": ["/etc/redis/redis.conf", "/etc/redis.conf"],
        "ssh": ["/etc/ssh/sshd_config"],
    },
}

SCRIPT = """
for file in "$@"; do
    if [ -r "$file" ]; then exec cat -- "$file"; fi
done
echo "none of these files exists: $*" >&2
exit 1
"""


def run(ctx, params):
    ctx.shell(SCRIPT, args=ctx.settings["configs"][params["service"]])
