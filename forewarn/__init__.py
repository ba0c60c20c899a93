"""Forewarn's shared core: wire contracts, settings, dataset directories, the CLI.

Every part (``simulators``, ``edge_agent``, ``models``, ``stream``) imports from here and
never from each other's internals, except that the edge agent runs ``models``' runtime.
"""

__version__ = "0.1.0"
