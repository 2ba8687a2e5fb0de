"""The project's error types: each becomes one clear line on stderr and a distinct exit code."""

from __future__ import annotations


class OsmonError(Exception):
    """An error the user can act on; the CLI prints it without a traceback."""

    exit_code = 2

    def report(self) -> str:
        """What the CLI prints after "osmon <command>: "."""
        return str(self)


class ConfigError(OsmonError):
    """The config file is wrong; ``problems`` lists every problem found, one per line."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)

    def report(self) -> str:
        """One problem on the command's line; several counted, then one indented a line (the
        same for every command, ``osmon check`` included)."""
        if len(self.problems) == 1:
            return self.problems[0]
        return (f"{len(self.problems)} problems in the config:\n"
                + "\n".join(f"  {problem}" for problem in self.problems))


class DataDirError(OsmonError, OSError):
    """The data directory cannot be created, opened or locked (a path under a file, no
    permission, a full disk): the command cannot run at all.  Still an ``OSError``, so code
    that handles file-system failures keeps handling this one."""


class LockHeld(OsmonError):
    """Another pass (or a backup/restore) holds the data directory's lock."""

    exit_code = 3


class BackupError(OsmonError):
    """A backup could not be made, found, verified, restored or deleted, or the data directory
    could not be swapped with a restored one."""

    exit_code = 1


class MutingError(OsmonError):
    """A silence or an acknowledgement was refused (an unknown host, tag or metric, a bad
    duration or time, no reason, nothing active to acknowledge): nothing was changed."""
