"""The project's own errors: each carries a one-line message fit to show a user as it is."""


def validation_problem(error: dict) -> str:
    """A pydantic error's message without the `Value error, ` that pydantic puts before a validator's own."""
    return error["msg"].removeprefix("Value error, ")


class MtstError(Exception):
    """Any problem mtst reports to a user instead of a traceback."""


class DataError(MtstError):
    """A problem in a dataset file; the message starts with `file:line:` where a line is known."""

    def __init__(self, path, line: int | None, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class ConfigError(MtstError):
    """An invalid configuration file or setting."""


class CheckpointError(MtstError):
    """A checkpoint folder that is missing files or whose parts disagree."""


class TrainingDiverged(MtstError):
    """The training loss turned NaN or infinite; the weights of the step before are kept."""
