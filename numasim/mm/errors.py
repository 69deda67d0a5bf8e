"""The error a simulated kernel file interface returns: an errno and its text.

It lives below both the scenario layer's VFS (:mod:`numasim.mm.script.vfs`) and the kernel
code behind its files (:mod:`numasim.mm.numa_balancing`'s sysctl and debugfs knobs), so that
neither imports the other for it.
"""

from __future__ import annotations


class VfsError(OSError):
    """A file operation failed with ``errno`` (``EINVAL``, ``ENOENT``...)."""
