"""ONNX export, INT8 quantization with ONNX Runtime, and latency measurement of a graph.

Export uses the TorchScript exporter (``dynamo=False``, opset 17) with a dynamic batch axis:
its graph quantizes directly (DESIGN.md). Two INT8 variants are built and measured:

    dynamic   quantize_dynamic: int8 weights (MatMul, Gather), activations quantized per tensor at run time
    static    quantize_static, QDQ: int8 weights per channel, activation scales calibrated on training
              windows (only the MatMuls whose second input is a weight; attention's activation x
              activation products stay float)

Dynamic quantization computes one activation scale over the whole batch tensor, so a window's
outputs shift slightly with the other windows of its batch; static quantization fixes the
scales and is batch invariant. The pipeline measures both and keeps the better (see report).
"""

from __future__ import annotations

import logging
import statistics
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from torch import nn

from models.features import Features
from models.model import SLM, Exported
from models.runtime import INPUTS, OUTPUTS, session


def export_onnx(model: SLM, path: Path, wrapper: nn.Module | None = None) -> Path:
    """FP32 ONNX graph of the model with inputs (sensors, tokens) and OUTPUTS, batch axis dynamic;
    ``wrapper``: the module that computes OUTPUTS from the model (default: models.model.Exported)."""
    cfg = model.cfg
    wrapper = (wrapper or Exported(model)).eval()
    dummy = (torch.zeros(2, cfg.sensor_tokens, cfg.sensor_features), torch.ones(2, cfg.log_tokens, dtype=torch.long))
    axes = {name: {0: "batch"} for name in (*INPUTS, *OUTPUTS)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated upstream but is the one whose graph quantizes
        # directly (DESIGN.md); tracing also warns about our shape asserts, which hold by construction.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]
        torch.onnx.export(
            wrapper,
            dummy,
            str(path),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
            do_constant_folding=True,
        )
    onnx.checker.check_model(str(path))
    return path


class _QuietQuantizer:
    """onnxruntime.quantization logs advice on the root logger at WARNING; keep it out of our output."""

    def __enter__(self) -> None:
        self.level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().setLevel(self.level)


def quantize_dynamic_int8(src: Path, dst: Path) -> Path:
    with _QuietQuantizer():
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"])
    return dst


def weight_matmuls(path: Path) -> list[str]:
    """Names of MatMul nodes whose second input is a weight (an initializer), i.e. the projections."""
    graph = onnx.load(str(path)).graph
    weights = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]


class _Reader(CalibrationDataReader):  # type: ignore[misc]
    def __init__(self, features: Features, batch: int = 32) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = (
            {
                "sensors": features.sensors[i : i + batch].astype(np.float32),
                "tokens": features.tokens[i : i + batch].astype(np.int64),
            }
            for i in range(0, len(features.sensors), batch)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_static_int8(src: Path, dst: Path, calibration: Features) -> Path:
    with _QuietQuantizer():
        quantize_static(
            str(src),
            str(dst),
            _Reader(calibration),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=weight_matmuls(src),
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return dst


def run_onnx(path: Path, features: Features, batch: int = 256, threads: int = 1) -> dict[str, np.ndarray]:
    """All OUTPUTS of a graph over featurised windows."""
    sess = session(path, threads)
    parts: dict[str, list[np.ndarray]] = {n: [] for n in OUTPUTS}
    for at in range(0, len(features.sensors), batch):
        feeds = {
            "sensors": features.sensors[at : at + batch].astype(np.float32),
            "tokens": features.tokens[at : at + batch].astype(np.int64),
        }
        for name, value in zip(OUTPUTS, sess.run(list(OUTPUTS), feeds), strict=True):
            parts[name].append(value)
    return {n: np.concatenate(v) for n, v in parts.items()}


def interleaved_latency(graphs: dict[str, tuple[Path, Features]], rounds: int = 5, runs: int = 200) -> dict[str, float]:
    """Median over ``rounds`` of each graph's batch-1 median ms, the graphs taking turns within every round.

    Measured in turns, a burst of load on the machine lands on every graph alike, so the ratios
    between stages hold even where the absolute figures wander.
    """
    medians: dict[str, list[float]] = {name: [] for name in graphs}
    for _ in range(rounds):
        for name, (path, features) in graphs.items():
            medians[name].append(latency(path, features, batch=1, runs=runs)["ms_per_call_p50"])
    return {name: round(statistics.median(values), 4) for name, values in medians.items()}


def latency(
    path: Path, features: Features, batch: int = 1, threads: int = 1, runs: int = 200, warmup: int = 20
) -> dict[str, float]:
    """Median (and p90) milliseconds per call at ``batch`` windows on ``threads`` threads, after a warm-up; windows/s."""
    sess = session(path, threads)
    n = len(features.sensors)
    times = []
    for r in range(warmup + runs):
        at = (r * batch) % max(1, n - batch + 1)
        feeds = {
            "sensors": features.sensors[at : at + batch].astype(np.float32),
            "tokens": features.tokens[at : at + batch].astype(np.int64),
        }
        t0 = time.perf_counter()
        sess.run(None, feeds)
        if r >= warmup:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {
        "batch": batch,
        "threads": threads,
        "ms_per_call_p50": round(median * 1e3, 4),
        "ms_per_call_p90": round(float(np.percentile(times, 90)) * 1e3, 4),
        "windows_per_s": round(batch / median, 1),
    }
