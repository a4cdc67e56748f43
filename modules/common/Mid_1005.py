"""1005 sync application file: copy a config file from the master, then apply it.

Each entry of ``files`` names the source inside the master's files folder
(Salt ``file_roots`` / ``ansible.files_dir``), the destination and mode on the
hosts, and ``then``: an argv to run afterwards, or ``{"service": name,
"action": "reload"}``. Hosts whose copy failed are not touched by ``then``.
"""

from omserver.sdk import ModuleError

NAME = "同步应用文件 Sync application file"
CAPTION = "Copy a configuration file from the master to the hosts, then reload what uses it."
PARAMS = [
    {
        "name": "file",
        "type": "choice",
        "label": "file",
        "required": True,
        "choices": ["nginx", "haproxy", "rsyslog", "sysctl", "logrotate"],
        "help": "which configuration file to push",
    },
]
EXCLUSIVE = True  # two pushes of one file to one host must not interleave
SETTINGS = {
    "files": {
        "nginx": {
            "source": "nginx/nginx.conf",
            "dest": "/etc/nginx/nginx.conf",
            "mode": "0644",
            "then": ["nginx", "-s", "reload"],
        },
        "haproxy": {
            "source": "haproxy/haproxy.cfg",
            "dest": "/etc/haproxy/haproxy.cfg",
            "mode": "0644",
            "then": {"service": "haproxy", "action": "reload"},
        },
        "rsyslog": {
            "source": "rsyslog/rsyslog.conf",
            "dest": "/etc/rsyslog.conf",
            "mode": "0644",
            "then": {"service": "rsyslog", "action": "restart"},
        },
        "sysctl": {
            "source": "sysctl/90-omserver.conf",
            "dest": "/etc/sysctl.d/90-omserver.conf",
            "mode": "0644",
            "then": ["sysctl", "--system"],
        },
        "logrotate": {
            "source": "logrotate/omserver",
            "dest": "/etc/logrotate.d/omserver",
            "mode": "0644",
            "then": None,
        },
    },
}


def run(ctx, params):
    entry = ctx.settings["files"].get(params["file"])
    if not entry:
        raise ModuleError(f"no files.{params['file']} entry in the settings of module 1005")
    ctx.copy(entry["source"], entry["dest"], entry.get("mode", "0644"))
    then = entry.get("then")
    if isinstance(then, list):
        ctx.cmd(then)
    elif isinstance(then, dict):
        ctx.service(then["service"], then.get("action", "reload"))
