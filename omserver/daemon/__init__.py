"""The master-control daemon: the rpyc server and its gate (``server``, ``service``),
what each operation does (``handlers``), and its life from start to SIGTERM (``serve``)."""
