"""`python -m streamer.cli ...` is the `streamer` command."""

from streamer.cli.entry import run

run()
