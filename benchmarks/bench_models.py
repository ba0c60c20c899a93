"""Latency and throughput of the SLM on one CPU thread: teacher, FP32 student, pruned, INT8, and the runtime path.

    python benchmarks/bench_models.py [--model BUNDLE] [--run-dir RUN] [--runs N]

Graphs come from a training run directory (``--run-dir``, what `forewarn model train`
leaves: teacher.onnx, student.onnx, final_fp32.onnx, int8_dynamic.onnx, int8_static.onnx).
Without one, the bundle's own INT8 graph is timed against an FP32 graph of the same shape
with random weights, exported and quantized here (timing barely depends on weight values);
the table says which. Inputs are real windows of a simulated plant (the demo scenario),
featurised by the bundle. Each figure is the median of ``--runs`` timed calls after a
warm-up, one intra-op thread; ratios are against the FP32 student of the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.features import Features
from models.runtime import Bundle, Predictor, default_bundle_path, session
from models.windowing import Window, windows_from_messages


def demo_windows(bundle: Bundle, hours: float = 3.0) -> list[Window]:
    from simulators.plant import Plant
    from simulators.scenario import load_scenario

    plant = Plant(load_scenario("demo"), seed=0)
    rated = plant.meta().rated_currents()  # what a gateway's edge.nameplates would hold
    return list(windows_from_messages(plant.messages(hours * 3600), bundle.spec, rated_currents=rated))


def time_graph(path: Path, feats: Features, batch: int, runs: int, vocab_map: np.ndarray | None = None) -> float:
    """Median ms per window."""
    sess = session(path, threads=1)
    tokens = feats.tokens if vocab_map is None else vocab_map[feats.tokens]
    n = len(feats.sensors)
    times = []
    for r in range(runs + 10):
        at = (r * batch) % max(1, n - batch + 1)
        feeds = {"sensors": feats.sensors[at : at + batch], "tokens": tokens[at : at + batch]}
        t0 = time.perf_counter()
        sess.run(None, feeds)
        if r >= 10:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3 / batch


def random_reference(bundle: Bundle, workdir: Path) -> dict[str, Path]:
    import torch

    from models.config import ModelConfig
    from models.export import export_onnx, quantize_dynamic_int8
    from models.model import SLM

    torch.manual_seed(0)
    model = SLM(ModelConfig.from_dict(bundle.model_config)).eval()
    fp32 = export_onnx(model, workdir / "fp32.onnx")
    return {
        "FP32 (random weights, shipped shape)": fp32,
        "INT8 dynamic (random weights)": quantize_dynamic_int8(fp32, workdir / "int8.onnx"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_bundle_path())
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    bundle = Bundle.load(args.model)
    predictor = Predictor(bundle, threads=1)
    windows = demo_windows(bundle)
    feats = predictor.featuriser(windows)
    print(f"bundle {bundle.version}: {len(windows)} demo windows, {bundle.features.tokens(bundle.spec)} tokens each, one thread")

    graphs: dict[str, Path] = {}
    vocab_map = None
    if args.run_dir:
        names = {
            "teacher": "teacher (MiniLM-L6, FP32)",
            "student": "student FP32",
            "pruned": "pruned FP32",
            "lowrank": "low-rank FP32",
            "final_fp32": "final FP32",
            "int8_dynamic": "INT8 dynamic",
            "int8_static": "INT8 static",
        }
        graphs = {
            label: args.run_dir / f"{name}.onnx" for name, label in names.items() if (args.run_dir / f"{name}.onnx").exists()
        }
        from models.tokenizer import base_tokenizer_path  # teacher reads MiniLM ids

        vocab = bundle.tokenizer.tokenizer.get_vocab()
        import json

        full = json.loads(base_tokenizer_path().read_text())["model"]["vocab"]
        vocab_map = np.zeros(len(vocab), dtype=np.int64)
        for token, i in vocab.items():
            vocab_map[i] = full[token]
    graphs["shipped bundle model.onnx"] = bundle.onnx_path
    tmp = tempfile.TemporaryDirectory()
    if not args.run_dir:
        graphs = {**random_reference(bundle, Path(tmp.name)), **graphs}

    rows = []
    for label, path in graphs.items():
        vm = vocab_map if label.startswith("teacher") else None
        b1 = time_graph(path, feats, 1, args.runs, vm)
        b64 = time_graph(path, feats, 64, max(10, args.runs // 10), vm)
        rows.append((label, path.stat().st_size / 1e6, b1, 1e3 / b64))
    base = next((r for r in rows if r[0] in ("student FP32", "FP32 (random weights, shipped shape)")), rows[0])
    final = next((r for r in rows if r[0] == "final FP32"), None)
    print(f"\n{'graph':<38}{'MB':>8}{'ms/window b1':>14}{'windows/s b64':>15}{'x vs FP32 student':>19}{'x vs final FP32':>17}")
    for label, mb, b1, wps in rows:
        vs_final = f"{final[2] / b1:>16.2f}x" if final else f"{'-':>17}"
        print(f"{label:<38}{mb:>8.2f}{b1:>14.3f}{wps:>15,.0f}{base[2] / b1:>18.2f}x{vs_final}")

    # The gateway's whole path: featurisation + graph + evidence, per window and batched.
    sample = windows[:200]
    for w in sample[:20]:
        predictor.predict([w])
    one = []
    for w in sample:
        t0 = time.perf_counter()
        predictor.predict([w])
        one.append(time.perf_counter() - t0)
    batch = (sample * 2)[:256]
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        predictor.predict(batch)
        times.append(time.perf_counter() - t0)
    print(
        "\nPredictor.predict (featurise + graph + evidence), one thread: "
        f"{statistics.median(one) * 1e3:.3f} ms/window at batch 1, "
        f"{len(batch) / statistics.median(times):,.0f} windows/s on batches of {len(batch)}"
    )
    tmp.cleanup()


if __name__ == "__main__":
    main()
