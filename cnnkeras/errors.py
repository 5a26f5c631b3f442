"""Errors that are the user's to fix: the CLI prints them as one line, without a traceback."""


class UserError(ValueError):
    """A bad model name, option, shape, file or dataset; the message says what to do."""
