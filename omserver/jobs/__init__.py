"""Running jobs: the engine and its queue, rollouts, the job processes that run a
module's code, and the ``Recorder`` the engine writes the record of truth through."""
