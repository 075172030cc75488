"""Plain exceptions out of task groups.

Task groups wrap whatever a child or the body raises in an exception group. This
package promises plain exceptions to its callers: when a group holds one error (the
usual case, since the first error cancels the rest), that error is raised as it is;
so is the first of several that say the same (workers meeting one cause together).
A group of several distinct errors is raised unchanged, as it would be from anyio.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def plain_errors() -> Iterator[None]:
    """Re-raise the only error of an exception group by itself."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        if len({(type(leaf), str(leaf)) for leaf in leaves}) == 1:
            raise leaves[0] from leaves[0].__cause__
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error
