"""What the daemon and its clients agree on: frames (``wire``), the rpyc channel
and its settings (``channel``), the operations and their errors (``operations``),
replay protection (``replay``) and the per-client key store (``keys``)."""
