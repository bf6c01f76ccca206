"""Sub-commands of the ``digitnet`` CLI, one module each (discovered by ``digitnet.cli``)."""
