"""User-facing errors.

Every problem a user can cause (a YAML typo, a nodemask naming a missing node, a trace cut in
half) is raised as a :class:`NumasimError`.  The command line prints its message as one
paragraph and exits non-zero; it never shows a traceback for these.  Bugs in numasim itself are
ordinary exceptions and do show a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Problem:
    """One thing wrong with an input: where it is and what would be valid."""

    message: str
    file: str | None = None
    field: str | None = None
    line: int | None = None
    hint: str | None = None

    def render(self) -> str:
        where = []
        if self.file:
            where.append(f"{self.file}" + (f":{self.line}" if self.line else ""))
        if self.field:
            where.append(f"field '{self.field}'")
        head = ", ".join(where)
        text = f"{head}: {self.message}" if head else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class NumasimError(Exception):
    """An error in the user's input: rendered as a short message, exit code 2."""

    exit_code = 2

    def __init__(
        self,
        message: str = "",
        *,
        file: str | None = None,
        field: str | None = None,
        line: int | None = None,
        hint: str | None = None,
        problems: Iterable[Problem] | None = None,
    ) -> None:
        self.problems: list[Problem] = list(problems or [])
        if message:
            self.problems.insert(0, Problem(message, file, field, line, hint))
        super().__init__(self.render())

    @property
    def file(self) -> str | None:
        return self.problems[0].file if self.problems else None

    @property
    def field(self) -> str | None:
        return self.problems[0].field if self.problems else None

    def render(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0].render()
        lines = [f"{len(self.problems)} problems:"]
        lines += [f"  - {p.render()}" for p in self.problems]
        return "\n".join(lines)


class ConfigError(NumasimError):
    """A configuration file (machine, workload, experiment) is invalid."""


class ScriptError(NumasimError):
    """A scenario script line is not valid script."""


@dataclass
class ErrorCollector:
    """Gathers problems so that a file's every mistake is reported at once."""

    file: str | None = None
    problems: list[Problem] = field(default_factory=list)

    def add(self, message: str, *, field: str | None = None, line: int | None = None,
            hint: str | None = None) -> None:
        self.problems.append(Problem(message, self.file, field, line, hint))

    def raise_if_any(self, cls: type[NumasimError] = ConfigError) -> None:
        if self.problems:
            raise cls(problems=self.problems)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The closest valid spelling of ``word`` among ``choices``, or None."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    choices = sorted(choices)
    best = closest(word, choices)
    valid = ", ".join(choices)
    if best:
        return f"did you mean '{best}'? valid: {valid}"
    return f"valid: {valid}"
