"""Error types that CLIs report as one clear line (no traceback)."""


class GssplatError(Exception):
    """Base class for expected, user-facing failures: bad input files, bad options, bad data."""


class DataError(GssplatError):
    """A data file is missing, malformed or inconsistent; the message names the file."""


class CheckpointError(GssplatError):
    """A checkpoint does not exist or does not match the requested model config."""
