"""`python -m streamer.cli ...` is the `streamer` command."""

from streamer.cli.main import main

main()
