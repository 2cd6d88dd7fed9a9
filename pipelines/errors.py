"""The vocabulary of failures a user can fix: `UserError` and the CLI's exit codes."""

from __future__ import annotations

# exit codes (documented in the README)
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NETWORK = 4
EXIT_DESTINATION = 5
EXIT_REJECTS = 6  # with --strict: the run loaded, but some records were kept aside in _intercom_rejects
EXIT_INTERRUPTED = 130  # Ctrl-C, or a SIGTERM to `run --all`: as shells report a SIGINT


class UserError(Exception):
    """An expected failure the user can fix; its message is the single line the CLI prints."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
