"""Person detectors: one small adapter per backend (motion, onnx, ssdlite-person)."""
