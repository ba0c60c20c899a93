"""The small language model: windowing and featurisation, teacher, distillation, pruning, INT8 ONNX bundle, runtime."""
