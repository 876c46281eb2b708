"""What is wrong with a policy set: each problem names the file, the field and the problem (CONTRACTS.md section 3).
Every part of a policy (limits, calendars, early warnings, segments, statuses) reports into one `Collector`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.problem}"


class PolicyError(ValueError):
    """One or more problems that make a policy set unusable; `warnings` are the ignored unknown fields found on the
    way, which a user fixing the problems wants to see too."""

    def __init__(self, problems: list[Problem], warnings: list[Problem] | None = None):
        self.problems = problems
        self.warnings = list(warnings or ())
        super().__init__("\n".join(str(p) for p in problems))


class Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        # calendars that are defined but could not be built (already reported): a policy naming one is not also
        # "unknown calendar"; all of them when the calendars file itself could not be read
        self.broken_calendars: set[str] = set()
        self.calendars_unreadable = False

    def add(self, file: str, fld: str, problem: str) -> None:
        self.problems.append(Problem(file, fld, problem))

    def ignored(self, file: str, fld: str) -> None:
        """An unknown field: warned about and ignored."""
        self.warnings.append(Problem(file, fld, "unknown field, ignored"))
