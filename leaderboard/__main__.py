"""``python -m leaderboard``: the same commands as ``facebench submit`` / ``facebench leaderboard``."""

import typer

from facebench.errors import run_with_one_line_errors
from leaderboard.cli import leaderboard_app, submit_command

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.command("submit")(submit_command)
app.add_typer(leaderboard_app, name="leaderboard")

if __name__ == "__main__":
    run_with_one_line_errors(app)
