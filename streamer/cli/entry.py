"""The `streamer` command's entry point: signals handled before anything else is imported.

Ctrl-C or SIGTERM while the command is still starting (importing, loading the model, opening the input)
ends it with one line and the usual exit status, never a traceback or a silent kill; once a run has
started, the engine turns both into a clean end with its outputs flushed and its summary written.
"""

import signal
import sys

EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds like Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def run() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        from streamer.cli.main import main

        main()
    except Terminated:
        print("streamer: terminated", file=sys.stderr)
        sys.exit(EXIT_TERMINATED)
    except KeyboardInterrupt:
        print("streamer: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
