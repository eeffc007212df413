"""Commands the engine thread runs in groups (internal to the engine thread)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .live import Ctx


class GroupedCommand:
    """A command the engine thread runs **together** with the commands of the same class queued right after it
    (:meth:`run_group`): e.g. ride requests, one engine input and one insert for all of them. Two commands with
    the same :meth:`group_key` never share a group (the second must see the first: a retried ride)."""

    def __call__(self, ctx: Ctx) -> Any:  # pragma: no cover - subclasses run alone too
        raise NotImplementedError

    def group_key(self) -> Hashable:
        raise NotImplementedError

    @staticmethod
    def run_group(ctx: Ctx, cmds: Sequence[GroupedCommand]) -> list[tuple[bool, Any]]:
        """``(True, result)`` or ``(False, ServiceError)`` per command, in order."""
        raise NotImplementedError
