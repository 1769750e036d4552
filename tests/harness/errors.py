"""Exceptions raised by the harness."""


class HarnessError(RuntimeError):
    """A harness operation failed or timed out; the message carries the relevant log tail."""


class PsqlError(HarnessError):
    """psql exited non-zero. `.returncode`, `.stdout`, `.stderr` hold what it said."""

    def __init__(self, message, returncode=None, stdout="", stderr=""):
        super().__init__(message)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class SanitizerError(HarnessError):
    """pgpilot printed an AddressSanitizer / UBSan / LeakSanitizer report."""
