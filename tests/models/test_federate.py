"""Federated fine-tuning (`forewarn federate`): a real Flower server and real site processes over TLS.

Flower cannot live in the test environment (.venv; its pins clash with [dev]'s), so the server
and the sites run from the [train,federate] environment that scripts/test makes, named by
FOREWARN_FEDERATE_PYTHON; this process never imports flwr.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from forewarn.cli import main
from forewarn.dataset import iter_messages
from models.runtime import Bundle, Predictor
from models.windowing import windows_from_messages
from tests.models.synthetic import write_dataset
from tests.pki import make_ca, make_cert

# The session's tiny bundle is trained in the first test that asks for it (see test_runtime.py).
pytestmark = pytest.mark.timeout(900)

TOKENS = {"north": "north-token-0123456789", "south": "south-token-0123456789"}
PROCESS_S = 300.0  # a process's start, data and rounds take well under 90 s on a quiet machine


def federate_python() -> str:
    """The interpreter of the federation environment; the test fails (never skips) without it: CI must run it."""
    python = os.environ.get("FOREWARN_FEDERATE_PYTHON", "")
    if not python or not Path(python).is_file():
        pytest.fail(
            "FOREWARN_FEDERATE_PYTHON does not name an interpreter with forewarn[train,federate]: run the tests with "
            "scripts/test, which makes .venv-federate and sets it"
        )
    return python


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two sites' own datasets: the same kind of plant, other machines' histories (other seeds)."""
    root = tmp_path_factory.mktemp("sites")
    return {name: write_dataset(root / name, seconds=5400, seed=seed) for name, seed in (("north", 1), ("south", 2))}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + PROCESS_S
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited: {log.read_text()}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"the server never listened on {port}: {log.read_text()}")


class Federation:
    """Processes of one federation, each with its output in a log file; all ended on exit."""

    def __init__(self, root: Path) -> None:
        self.root, self.python = root, federate_python()
        self.procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        (root / "sites.toml").write_text("[sites]\n" + "".join(f'{k} = "{v}"\n' for k, v in TOKENS.items()))

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.root / f"{name}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                [self.python, "-m", "forewarn.cli", "federate", *args], stdout=fh, stderr=subprocess.STDOUT, env=env
            )
        self.procs[name] = (proc, log)
        return proc

    def site(self, name: str, data: Path, bundle: Path, port: int, token: str, *extra: str) -> subprocess.Popen[bytes]:
        (self.root / f"{name}.token").write_text(token)
        args = ["site", str(data), "--from", str(bundle), "--server", f"127.0.0.1:{port}", "--name", name.split("-")[0]]
        args += ["--token-file", str(self.root / f"{name}.token"), "--work", str(self.root / f"work-{name}"), *extra]
        return self.start(name, *args)

    def finish(self, name: str) -> tuple[int, str]:
        proc, log = self.procs[name]
        try:
            code = proc.wait(timeout=PROCESS_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"{name} did not finish in {PROCESS_S:g} s: {log.read_text()}") from None
        return code, log.read_text()

    def close(self) -> None:
        for proc, _ in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    fed = Federation(tmp_path)
    yield fed
    fed.close()


@pytest.mark.integration
def test_two_sites_federate_over_tls_into_an_int8_bundle_and_a_wrong_token_is_refused(
    tiny_bundle: Path, sites: dict[str, Path], federation: Federation, tmp_path: Path
) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    make_ca(pki, "ca")
    make_cert(pki, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
    port, out = _free_port(), tmp_path / "federated"
    tls = ["--ca", str(pki / "ca.pem"), "--cert", str(pki / "server.pem"), "--key", str(pki / "server.key")]
    server = federation.start(
        "server", "server", "--from", str(tiny_bundle), "--out", str(out), "--rounds", "2", "--min-sites", "2",
        "--sites", str(tmp_path / "sites.toml"), "--address", f"127.0.0.1:{port}", "--steps", "5", *tls,
    )  # fmt: skip
    _wait_listening(port, server, tmp_path / "server.log")
    ca = ["--ca", str(pki / "ca.pem")]
    federation.site("north-impostor", sites["south"], tiny_bundle, port, "not-north-0123456789", *ca)
    federation.site("north", sites["north"], tiny_bundle, port, TOKENS["north"], *ca, "--out", str(tmp_path / "north-model"))
    federation.site("south", sites["south"], tiny_bundle, port, TOKENS["south"], *ca)

    code, log = federation.finish("north-impostor")
    assert code != 0 and "refused" in log, log
    for name in ("north", "south"):
        code, log = federation.finish(name)
        assert code == 0, log
        # Every round, the site's canary judged the aggregate and the site said what it did.
        for round_ in (1, 2):
            assert (
                f"site {name} round {round_}: adopts the global model" in log
                or f"site {name} round {round_}: keeps its current" in log
            )
    code, log = federation.finish("server")
    assert code == 0, log
    # refused for its wrong token, or, when the real north joined first, for a name already joined
    assert "refused a site claiming to be 'north'" in log
    assert "TLS on" in log

    bundle, base = Bundle.load(out), Bundle.load(tiny_bundle)
    assert bundle.version != base.version and bundle.labels == base.labels
    record = bundle.config["federated"]
    assert record["from"] == base.version and record["sites"] == ["north", "south"] and record["tls"] is True
    assert [r["round"] for r in record["history"]] == [1, 2] and record["refused"] == ["north"]
    with np.load(tiny_bundle / "student.npz") as z:
        model_bytes = sum(z[k].astype(np.float32).nbytes for k in z.files)
    for r in record["history"]:
        for site in r["sites"].values():
            assert site["bytes_sent"] == model_bytes == site["bytes_received"]  # weights, and nothing else of the site's
    # An ordinary INT8 bundle: the runtime loads it and scores windows with it.
    ops = {node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node}
    assert "DynamicQuantizeLinear" in ops and bundle.config["quantization"] == "dynamic"
    windows = list(windows_from_messages(iter_messages(sites["north"]), bundle.spec))[:32]
    outputs = Predictor(bundle).predict(windows)
    assert len(outputs) == len(windows) and all(abs(sum(o.probabilities.values()) - 1) < 1e-3 for o in outputs)
    with np.load(tiny_bundle / "student.npz") as a, np.load(out / "student.npz") as b:
        assert any(not np.array_equal(a[k], b[k]) for k in a.files), "two rounds of training moved the weights"
    assert Bundle.load(tmp_path / "north-model").config["federated"]["site"] == "north"


@pytest.mark.integration
def test_fedprox_with_differential_privacy_reports_epsilon_and_each_canary_decides(
    tiny_bundle: Path, sites: dict[str, Path], federation: Federation, tmp_path: Path
) -> None:
    port, out = _free_port(), tmp_path / "federated"
    server = federation.start(
        "server", "server", "--from", str(tiny_bundle), "--out", str(out), "--rounds", "1", "--min-sites", "2",
        "--sites", str(tmp_path / "sites.toml"), "--address", f"127.0.0.1:{port}", "--steps", "3",
        "--strategy", "fedprox", "--mu", "0.5", "--dp-noise", "1.0", "--dp-clip", "50", "--dp-delta", "1e-5",
    )  # fmt: skip
    _wait_listening(port, server, tmp_path / "server.log")
    for name in ("north", "south"):
        federation.site(name, sites[name], tiny_bundle, port, TOKENS[name])
    decided: dict[str, bool] = {}
    for name in ("north", "south"):
        code, log = federation.finish(name)
        assert code == 0 and f"site {name} round 1: 3 local steps, FedProx mu 0.5" in log, log
        # The noisy aggregate is judged by each site's own canary (whether it keeps its model depends on how
        # the noise falls on a tiny model: test_a_site_keeps_its_model_when_the_aggregate_is_worse_on_its_canary pins the rule).
        kept = f"site {name} round 1: keeps its current model" in log
        assert kept or f"site {name} round 1: adopts the global model" in log, log
        decided[name] = not kept
    code, log = federation.finish("server")
    assert code == 0, log
    record = Bundle.load(out).config["federated"]
    assert record["strategy"] == "fedprox" and record["proximal_mu"] == 0.5
    assert {n: s["adopted"] for n, s in record["history"][0]["sites"].items()} == decided
    # One Gaussian mechanism of noise multiplier 1 at delta 1e-5, by Renyi DP: min over a of a/2 + ln(1e5)/(a-1) = 5.30.
    assert record["privacy"]["epsilon"] == pytest.approx(5.30, abs=0.01) and record["privacy"]["delta"] == 1e-5
    assert "differential privacy spent: epsilon 5.30" in log


def test_a_site_keeps_its_model_when_the_aggregate_is_worse_on_its_canary(
    tiny_bundle: Path, sites: dict[str, Path], tmp_path: Path
) -> None:
    from models.federate.local import SiteState, get_weights

    said: list[str] = []
    state = SiteState("north", tiny_bundle, [sites["north"]], tmp_path / "work", echo=said.append)
    mine = get_weights(state.current)
    rng = np.random.default_rng(0)
    broken = [w + rng.normal(0, 0.5, w.shape).astype(np.float32) for w in mine]  # an aggregate that went wrong
    decision = state.consider(broken, 1)
    assert not decision.adopted and decision.canary_global > decision.canary_before
    assert all(np.array_equal(a, b) for a, b in zip(get_weights(state.current), mine, strict=True))
    assert said[-1].startswith("site north round 1: keeps its current model: the global model is worse on its canary")
    assert state.consider(mine, 2).adopted, "a model no worse on the canary is adopted"


def test_without_flower_the_command_names_the_federate_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "flwr", None)  # as in an environment without the extra
    (tmp_path / "sites.toml").write_text("[sites]\n")
    args = ["federate", "server", "--from", str(tmp_path), "--out", str(tmp_path / "o"), "--sites", str(tmp_path / "sites.toml")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert (
        "`forewarn federate` needs flwr, which the [federate] extra installs: pip install 'forewarn[federate]'" in result.output
    )
    assert "Traceback" not in result.output
