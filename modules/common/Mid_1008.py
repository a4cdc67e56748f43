"""1008 install the audit agent: the bash profile snippet and the spooling shipper.

The files come from the master's files folder (Salt ``file_roots`` /
``ansible.files_dir``), under ``audit/``: copy ``deploy/audit/`` there. The
token reaches the host in the environment of one command, never in argv or a
script text, and lands in a root-only config file.
"""

NAME = "安装审计代理 Install audit agent"
CAPTION = "Install the shell-command audit agent (profile snippet + shipper service) on the hosts."
PARAMS = [
    {
        "name": "url",
        "type": "str",
        "label": "ingest URL",
        "required": True,
        "pattern": r"^https?://[A-Za-z0-9.:\[\]_-]+(/[A-Za-z0-9._~/-]*)?$",
        "max_length": 300,
        "help": "https://omserver.example.com/api/audit/events/",
        "sensitive": True,
    },
    {
        "name": "token",
        "type": "str",
        "label": "ingest token",
        "required": True,
        "pattern": r"^omat_[A-Za-z0-9_-]{20,100}$",
        "help": "a token from Audit → Ingest tokens (one per host or per category)",
        "sensitive": True,
    },
]
EXCLUSIVE = True
SETTINGS = {
    "shipper": "/usr/local/sbin/omserver-audit-ship",
    "snippet": "/etc/profile.d/omserver-audit.sh",
    "unit": "/etc/systemd/system/omserver-audit-ship.service",
    "config": "/etc/omserver-audit.conf",
}


def run(ctx, params):
    s = ctx.settings
    ctx.copy("audit/omserver-audit-ship", s["shipper"], "0755")
    ctx.copy("audit/omserver-audit-ship.service", s["unit"], "0644")
    ctx.cmd(
        [s["shipper"], "--config", s["config"], "configure", "--url", params["url"]],
        env={"OMSERVER_AUDIT_TOKEN": params["token"]},
    )
    ctx.cmd(["systemctl", "daemon-reload"])
    ctx.cmd(["systemctl", "enable", "omserver-audit-ship.service"])
    ctx.service("omserver-audit-ship", "restart")  # starts it, or runs a new copy
    # Last: shells only start recording once the shipper is there to collect.
    ctx.copy("audit/omserver-audit.sh", s["snippet"], "0644")
