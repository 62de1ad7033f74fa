"""The models outside Python: a portable contract for each shipped model.

`streamer export-edge MODEL OUT/` writes, for one model, everything a port to another runtime or language
needs and can check itself against:

- the model itself, unchanged (its `metadata_props` still carry the contract for runtimes that read them);
- `NAME.edge.json`, the sidecar (`sidecar.py`): every metadata key, plus a versioned, ordered description of
  each pre- and post-processing step with its formula and constants (`pipelines.py`), since JavaScript
  runtimes cannot read `metadata_props` at all (onnxruntime issue 16547);
- `NAME.conformance.json` (`conformance.py`): the arrays at every stage of the pipeline on real data, each
  with its tolerance, so a port can find the first stage where it departs;
- `NAME.int8.onnx` (`quantise.py`) with its quality measured beside the float model's, and which of the two
  the measurement recommends;
- `NAME.ort` (`ortformat.py`), the ORT format that onnxruntime's reduced (minimal) builds load, with the
  operator list such a build needs.

`streamer verify-edge OUT/` (`verify.py`) checks a bundle: sidecar version, model checksum, metadata against
sidecar, conformance file against model, and the model stage in onnxruntime. `js/` holds the reference port
of the ECG scoring path in JavaScript (onnxruntime-node or -web), written from the sidecar alone.
"""
