"""The ``omserver_command`` action, as Ansible's plugin loader finds it by file name."""

from omserver.backends.ansible_stream import ActionModule

__all__ = ["ActionModule"]
