"""1004 view kernel modules: lsmod, or the kernel's own list where kmod is not installed."""

NAME = "查看内核模块 View kernel modules"
CAPTION = "The loaded kernel modules (lsmod)."
PARAMS = []
SETTINGS = {"modules_file": "/proc/modules"}

SCRIPT = """
if command -v lsmod >/dev/null 2>&1; then exec lsmod; fi
exec cat -- "$1"
"""


def run(ctx, params):
    ctx.shell(SCRIPT, args=[ctx.settings["modules_file"]])
