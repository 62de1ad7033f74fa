"""aestream runtime: streams through autoencoders on onnxruntime. Never imports TensorFlow."""

__version__ = "0.1.0"
