"""The one exception type a user can fix: the CLI turns it into one line and exit code 2."""


class UserError(Exception):
    """Bad input (config, recipe, results file, CLI argument). Message is one line."""

    exit_code = 2
