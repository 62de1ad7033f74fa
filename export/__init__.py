"""Training, calibration and ONNX export for aestream models. Needs the `[train]` extra (TensorFlow)."""
