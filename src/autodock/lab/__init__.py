"""A real multi-node Docker Swarm on one machine, for trying autodock and testing it.

Every node is a network namespace with its own dockerd; a bridge in a hub namespace
joins them on 10.231.0.0/24, and a veth gives the host an address on that subnet. The
manager's namespace also runs a Registry v2 that every node pulls from. See docs/lab.md.
"""

from .topology import LabLayout, Node

__all__ = ["LabLayout", "Node"]
