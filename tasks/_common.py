"""What every task module shares: the task decorator and the one way a failure ends a task.

``task`` is ``invoke.task`` whose tasks answer ``--help`` in place of a positional argument:
invoke gives the token after a task's name to a missing positional argument before it looks
for flags, so ``inv manifest --help`` would otherwise call ``manifest`` with ``tag="--help"``.

``failures()`` turns a failed precondition, check or command (``ci.shell.ToolError``, which
the build side calls ``HostError``/``BuildError`` and the release side ``ReleaseError``) into
``Exit`` with its message: no traceback. Tasks pass ``dry=dry`` by keyword to ``ci/``, where
``ci.shell.change`` is the one place that runs a command or, with ``dry``, only shows it.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Iterator
from typing import Any

from invoke.collection import Collection
from invoke.exceptions import Exit
from invoke.parser import Parser
from invoke.program import Program
from invoke.tasks import Task
from invoke.tasks import task as invoke_task

from ci.shell import ToolError

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


def fail(message: str) -> Exit:
    """The ``Exit`` of a failed precondition: ``raise fail("...")``."""
    return Exit(f"error: {message}", code=1)


@contextlib.contextmanager
def failures() -> Iterator[None]:
    """A failed precondition or command inside becomes a clean ``Exit``."""
    try:
        yield
    except ToolError as e:
        raise fail(str(e)) from e
    except subprocess.CalledProcessError as e:
        raise fail(f"`{shlex.join(map(str, e.cmd))}` failed (exit {e.returncode})") from e
