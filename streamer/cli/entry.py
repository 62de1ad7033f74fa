"""The `streamer` command's entry point: signals handled before anything else is imported.

Ctrl-C or SIGTERM while the command is still starting (importing, loading the model, opening the input)
ends it with one line and the usual exit status, never a traceback or a silent kill; once a run has
started, the engine turns both into a clean end with its outputs flushed and its summary written.
"""

import os
import signal
import sys

EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds like Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def run() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    code: int | str | None = 0
    try:
        from streamer.cli.main import main

        main()
    except SystemExit as exc:
        code = exc.code
    except Terminated:
        print("streamer: terminated", file=sys.stderr)
        code = EXIT_TERMINATED
    except KeyboardInterrupt:
        print("streamer: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except Exception as exc:
        # a library that catches the interruption while it imports and raises its own error from it
        # (onnxruntime: `ImportError: initialization failed`) was still interrupted
        from streamer.core.errors import interruption_of

        interruption = interruption_of(exc)
        if interruption is None:
            raise
        terminated = isinstance(interruption, Terminated)
        print("streamer: terminated" if terminated else "streamer: interrupted", file=sys.stderr)
        code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    _leave(code)


def _leave(code: int | str | None) -> None:
    """Exit with `code`. After an audio device vanished mid-stream, PortAudio cannot be shut down (its exit
    handler would wait forever for the dead stream): everything is flushed and the process ends at once.

    After Ctrl-C or SIGTERM too, once the outputs are flushed (the run has closed them by now): a
    KeyboardInterrupt that once passed through Python code run from C (an extension's import, via
    PyRun_String) marks the interpreter as killed by Ctrl-C however it was handled, and Python's own shutdown
    would then end the process by SIGINT (status -2) instead of 130 (seen in about 1 of 50 signal tests)."""
    devices = sys.modules.get("streamer.audio.devices")
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        _exit_now(code, run_atexit=True)
    if devices is not None and getattr(devices, "ABANDONED", None):
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int | str | None, run_atexit: bool = False) -> None:
    """End the process at once with `code` (a string is printed and gives 1), stdout and stderr flushed."""
    if run_atexit:
        import atexit

        atexit._run_exitfuncs()
    if isinstance(code, str):
        print(code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
