"""TensorFlow imported quietly: training shows its own progress, not TensorFlow's log lines.

What TensorFlow 2.21 prints, and what silences it:

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796238351.163764    6827 port.cc:153] oneDNN custom operations are on. ...

These come from C++ while `import tensorflow` runs, before absl's logging is set up, and go straight to
file descriptor 2: TF_CPP_MIN_LOG_LEVEL does not stop them (tried: 1, 2, 3), so file descriptor 2 points
to /dev/null during the import. Later C++ messages obey TF_CPP_MIN_LOG_LEVEL (set to 3 before the import);
Python-side chatter goes through the `tensorflow`, `absl` and `tf2onnx` loggers and
through `warnings`. onnxruntime, which the export and int8 quantisation run, is quieted alike: its C++
warnings ("[W:onnxruntime:, graph.cc:5809 ...] Removing initializer ...") by its logger severity, its
Python tools' warnings by the `onnxruntime` logger.
"""

from __future__ import annotations

import logging
import os
import warnings

from streamer.core.cstderr import silence_c_stderr

# TF_CPP_MIN_LOG_LEVEL: 3 drops INFO, WARNING and ERROR. Not 2: TF 2.21 with Keras 3.15 logs a harmless
# "E0000 ... node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool ..." at every fit.
TF_LOG_LEVEL = "3"
VERBOSE_ENV = "AESTREAM_TRAIN_VERBOSE"  # the choice, inherited by spawned export processes
QUIET_LOGGERS = ("tensorflow", "absl", "tf2onnx", "keras", "h5py", "onnxruntime")
ORT_ERRORS_ONLY = 3  # onnxruntime logger severity: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal
QUIET_MODULES = r"(tensorflow|keras|tf2onnx|absl|tf_keras|google\.protobuf)(\.|$)"


def import_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow, Keras and tf2onnx; unless `verbose`, without their (or onnxruntime's) log lines
    and warnings.

    Call before anything imports TensorFlow (its import is what prints); later calls only re-apply the
    logger levels. `verbose` leaves TensorFlow's own settings (and the user's TF_CPP_MIN_LOG_LEVEL) alone.
    """
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
    if verbose:
        _import_all()
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = TF_LOG_LEVEL
    warnings.filterwarnings("ignore", module=QUIET_MODULES)
    with silence_c_stderr():
        _import_all()
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    import absl.logging
    import onnxruntime

    absl.logging.set_verbosity(absl.logging.ERROR)
    onnxruntime.set_default_logger_severity(ORT_ERRORS_ONLY)


def import_tensorflow_as_parent_did() -> None:
    """In a spawned export process: import TensorFlow as quietly as the command that started it."""
    import_tensorflow(os.environ.get(VERBOSE_ENV) == "1")


def _import_all() -> None:
    import keras  # noqa: F401
    import tensorflow  # noqa: F401
    import tf2onnx  # noqa: F401
