"""Import servers from a CSV file, Salt's accepted keys or an Ansible inventory.

Each source has its parser (``csv_source``, ``salt_keys``, ``ansible_inventory``), and
every parser returns the same list of ``candidates.Candidate`` rows, so one planner
(``plan``) checks them all against the database with the model's own validators, and
``plan.apply_plan`` plans again inside the transaction that writes: what is written is
what the operator saw.
"""
