"""Test module in the book's style (chapter 13), ported to Python 3 only.

As in the book: a Modulehandle class, hosts as "ip*hostname,...", parameters
as a list of strings, Salt's LocalClient() with its default configuration,
and Salt's dict (or an error string) as the answer.
"""

import salt.client

from omserver.modules.legacy import target_host

PARAMS = [{"name": "lines", "type": "int", "default": 3, "min": 1, "max": 100}]


class Modulehandle:
    def __init__(self, moduleid, hosts, sys_param_row):
        self.hosts = target_host(hosts, "SN")
        self.moduleid = moduleid
        self.sys_param_array = sys_param_row
        self.Runresult = ""

    def run(self):
        try:
            client = salt.client.LocalClient()
            lines = self.sys_param_array[0] or "50"
            self.Runresult = client.cmd(
                self.hosts,
                "cmd.run",
                [["seq", lines]],
                tgt_type="list",
                kwarg={"python_shell": False},
            )
            if len(self.Runresult) == 0:
                return "No hosts found"
        except Exception as e:
            return str(e)
        return self.Runresult
