"""1003 view OS version: the first line of /etc/issue, as the book's module showed."""

NAME = "查看系统版本 View OS version"
CAPTION = "The first line of /etc/issue on each host."
PARAMS = []
SETTINGS = {"issue_file": "/etc/issue"}


def run(ctx, params):
    ctx.cmd(["head", "-n", "1", "--", ctx.settings["issue_file"]])
