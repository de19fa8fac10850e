"""User-facing errors: one line, exit status 2, no traceback."""


class UserError(Exception):
    """Bad input from the user (a file, a key, a flag).

    The message is printed as one line by the command-line entry point, which then
    exits with status 2. Messages name the file or flag, the key, and what would be valid.
    """
