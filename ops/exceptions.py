"""Errors of the operations package."""


class OpsError(Exception):
    """Base of every error ops/ raises; its message names the problem and the fix."""


class StackError(OpsError):
    """A server of the local stack cannot be installed, started or checked."""

    def __init__(self, server: str, problem: str, fix: str, log: str | None = None) -> None:
        self.server = server
        self.problem = problem
        self.fix = fix
        self.log = log
        where = f"\n  log: {log}" if log else ""
        super().__init__(f"{server}: {problem}\n  fix: {fix}{where}")
