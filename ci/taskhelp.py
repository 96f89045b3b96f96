"""``inv TASK --help`` for tasks that take positional arguments.

invoke gives the token after a task's name to a missing positional argument before
it looks for flags, so ``inv manifest --help`` would call ``manifest`` with
``tag="--help"``. Tasks declared with :func:`task` print their help instead.
"""

from __future__ import annotations

from typing import Any

from invoke.collection import Collection
from invoke.parser import Parser
from invoke.program import Program
from invoke.tasks import Task
from invoke.tasks import task as invoke_task

HELP_TOKENS = frozenset({"--help", "-h"})


def print_help(t: Task[Any]) -> None:
    """What ``inv --help TASK`` prints."""
    program = Program(binary="inv[oke]")
    program.collection = Collection(t)
    contexts = program.collection.to_contexts()
    program.parser = Parser(contexts=contexts)
    program.print_task_help(str(contexts[0].name))


class HelpfulTask(Task[Any]):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        given = [kwargs.get(name) for name in self.positional] + list(args[1:])
        if any(isinstance(v, str) and v in HELP_TOKENS for v in given):
            print_help(self)
            return None
        return super().__call__(*args, **kwargs)


def task(*args: Any, **kwargs: Any) -> Any:
    """``invoke.task`` whose tasks answer ``--help`` in place of a positional argument."""
    return invoke_task(*args, klass=HelpfulTask, **kwargs)
