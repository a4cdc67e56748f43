"""Ansible plugins of ours: the Ansible backend adds this folder to Ansible's
action plugin path, so a task's ``action`` may name a file here."""
