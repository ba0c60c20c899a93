"""The Flower side of a federation: the server (strategy, site admission, the bundle out) and a site.

Flower's gRPC transport (``flwr.server.start_server`` / ``flwr.client.start_client``, the
long-lived bidirectional stream; TLS from the CA, server certificate and key) carries the
weights. Admission: a site that connects is asked for its name and token (over TLS) before it
counts towards ``--min-sites``; an unknown name or a wrong token is refused, its stream closed.

Differential privacy (optional): Flower's server-side fixed clipping wraps the strategy; each
site's update is clipped to ``clip`` and Gaussian noise of ``noise x clip`` is added to the sum
every round. Every site takes part in every round (no sampling), so the (epsilon, delta) spent is
the Gaussian mechanism's Renyi-DP composed over the rounds, at the site level (``dp_epsilon``).
"""

from __future__ import annotations

import hmac
import math
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flwr
import grpc
import numpy as np
from flwr.client import NumPyClient
from flwr.common import (
    FitIns,
    FitRes,
    GetPropertiesIns,
    Parameters,
    Scalar,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server import ServerConfig, SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg, FedProx, Strategy

from models.errors import TrainingError
from models.federate.local import (
    Decision,
    LocalConfig,
    SiteState,
    get_weights,
    load_student,
    set_weights,
    weights_bytes,
    write_bundle,
)

Echo = Callable[[str], None]


def read_sites(path: Path) -> dict[str, str]:
    """The sites allowed to join and their tokens: a TOML file with a ``[sites]`` table of name = token."""
    try:
        sites = tomllib.loads(Path(path).read_text()).get("sites", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TrainingError(f"sites file {path}: {exc}") from exc
    if not sites or not all(isinstance(v, str) and len(v) >= 16 for v in sites.values()):
        raise TrainingError(f"sites file {path}: a [sites] table of name = token, each token at least 16 characters")
    return dict(sites)


class AdmittingClientManager(SimpleClientManager):  # type: ignore[misc]
    """Counts a connected site only once it has given a known name and that site's token."""

    def __init__(self, tokens: dict[str, str], echo: Echo) -> None:
        super().__init__()
        self.tokens, self.echo = tokens, echo
        self.names: dict[str, str] = {}  # cid -> site name
        self.refused: list[str] = []

    def register(self, client: ClientProxy) -> bool:
        # The stream's message loop starts only when this returns: ask for the token from another thread.
        threading.Thread(target=self._admit, args=(client,), daemon=True).start()
        return True

    def _admit(self, client: ClientProxy) -> None:
        try:
            res = client.get_properties(GetPropertiesIns(config={}), timeout=60, group_id=None)
            site, token = str(res.properties.get("site", "")), str(res.properties.get("token", ""))
        except Exception as exc:  # a site that cannot answer is not admitted
            site, token = f"<no answer: {exc}>", ""
        expected = self.tokens.get(site)
        if expected is None or not hmac.compare_digest(expected.encode(), token.encode()) or site in self.names.values():
            why = "unknown site" if expected is None else ("wrong token" if site not in self.names.values() else "already joined")
            self.echo(f"refused a site claiming to be {site!r}: {why}")
            self.refused.append(site)
            client.bridge.close()
            return
        self.names[client.cid] = site
        super().register(client)
        self.echo(f"site {site} joined ({len(self.names)} admitted)")

    def unregister(self, client: ClientProxy) -> None:
        if client.cid in self.clients:
            super().unregister(client)


@dataclass(frozen=True)
class Privacy:
    """Server-side central DP: clip each site's update to ``clip``, add N(0, (noise x clip)^2) to the sum."""

    noise: float
    clip: float
    delta: float = 1e-5


def dp_epsilon(noise: float, rounds: int, delta: float) -> float:
    """(epsilon, delta)-DP of ``rounds`` Gaussian mechanisms of noise multiplier ``noise`` (sensitivity 1 after
    clipping, no subsampling): RDP alpha/(2 noise^2) per round, composed, converted at the best order."""
    orders = np.concatenate([np.linspace(1.1, 10.9, 99), np.arange(11, 256)])
    eps = rounds * orders / (2 * noise**2) + math.log(1 / delta) / (orders - 1)
    return float(eps.min())


class Tracked(Strategy):  # type: ignore[misc]
    """The chosen strategy, with what a run reports: bytes per site per round, canary decisions, the last model."""

    def __init__(self, inner: Strategy, names: dict[str, str], echo: Echo, on_round: Callable[[int, Parameters], None]) -> None:
        super().__init__()
        self.inner, self.names, self.echo, self.on_round = inner, names, echo, on_round
        self.latest: Parameters | None = None
        self.rounds: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"Tracked({self.inner!r})"

    def initialize_parameters(self, client_manager: Any) -> Parameters | None:
        self.latest = self.inner.initialize_parameters(client_manager)
        return self.latest

    def configure_fit(self, server_round: int, parameters: Parameters, client_manager: Any) -> list[tuple[ClientProxy, FitIns]]:
        return list(self.inner.configure_fit(server_round, parameters, client_manager))

    def aggregate_fit(self, server_round: int, results: list[tuple[ClientProxy, FitRes]], failures: list[Any]) -> Any:
        params, metrics = self.inner.aggregate_fit(server_round, results, failures)
        record: dict[str, Any] = {"round": server_round, "sites": {}, "failures": len(failures)}
        for proxy, res in results:
            site = self.names.get(proxy.cid, proxy.cid)
            record["sites"][site] = {
                "bytes_sent": int(res.metrics.get("bytes_sent", 0)),
                "bytes_received": int(res.metrics.get("bytes_received", 0)),
                "train_loss": float(res.metrics.get("loss", float("nan"))),
                "windows": int(res.num_examples),
            }
        self.rounds.append(record)
        if params is not None:
            self.latest = params
            self.on_round(server_round, params)
        self.echo(f"round {server_round}: aggregated {len(results)} site(s), {len(failures)} failure(s)")
        return params, metrics

    def configure_evaluate(self, server_round: int, parameters: Parameters, client_manager: Any) -> Any:
        return self.inner.configure_evaluate(server_round, parameters, client_manager)

    def aggregate_evaluate(self, server_round: int, results: list[tuple[ClientProxy, Any]], failures: list[Any]) -> Any:
        record = next((r for r in self.rounds if r["round"] == server_round), None)
        for proxy, res in results:
            site = self.names.get(proxy.cid, proxy.cid)
            adopted = bool(res.metrics.get("adopted", 0))
            if record is not None and site in record["sites"]:
                record["sites"][site].update(canary_loss=float(res.loss), adopted=adopted)
            self.echo(
                f"round {server_round}: site {site} {'adopted' if adopted else 'kept its own model'} (canary loss {res.loss:.4f})"
            )
        return self.inner.aggregate_evaluate(server_round, results, failures)

    def evaluate(self, server_round: int, parameters: Parameters) -> Any:
        return self.inner.evaluate(server_round, parameters)


def serve(
    base_path: Path,
    out: Path,
    address: str,
    rounds: int,
    min_sites: int,
    sites: dict[str, str],
    strategy: str = "fedavg",
    proximal_mu: float = 0.01,
    local: LocalConfig | None = None,
    certificates: tuple[bytes, bytes, bytes] | None = None,
    privacy: Privacy | None = None,
    work: Path | None = None,
    save_rounds: Path | None = None,
    echo: Echo = print,
) -> dict[str, Any]:
    """Run a federation to its end and write the aggregated model as a bundle at ``out``; returns its record.

    ``save_rounds``: also keep each round's aggregate there (``round-001.npz``, FP32 state dicts), to
    measure how quality moves round by round."""
    local = local or LocalConfig()
    base, model = load_student(base_path)
    manager = AdmittingClientManager(sites, echo)

    def fit_config(server_round: int) -> dict[str, Scalar]:
        return {"round": server_round, "steps": local.steps, "lr": local.lr, "batch": local.batch, "base": base.version}

    common: dict[str, Any] = {
        "fraction_fit": 1.0,
        "fraction_evaluate": 1.0,
        "min_fit_clients": min_sites,
        "min_evaluate_clients": min_sites,
        "min_available_clients": min_sites,
        "initial_parameters": ndarrays_to_parameters(get_weights(model)),
        "on_fit_config_fn": fit_config,
        "on_evaluate_config_fn": lambda r: {"round": r, "base": base.version},
        "accept_failures": False,
    }
    if strategy == "fedavg":
        inner: Strategy = FedAvg(**common)
    elif strategy == "fedprox":
        inner = FedProx(**common, proximal_mu=proximal_mu)
    else:
        raise TrainingError(f"unknown strategy {strategy!r}: fedavg or fedprox")
    if privacy is not None:
        inner = DifferentialPrivacyServerSideFixedClipping(inner, privacy.noise, privacy.clip, min_sites)
    keys = list(model.state_dict())

    def keep(server_round: int, params: Parameters) -> None:
        if save_rounds is not None:
            save_rounds.mkdir(parents=True, exist_ok=True)
            arrays = parameters_to_ndarrays(params)
            np.savez(save_rounds / f"round-{server_round:03d}.npz", **dict(zip(keys, arrays, strict=True)))

    tracked = Tracked(inner, manager.names, echo, keep)
    echo(
        f"federation: {strategy}{f' (mu {proximal_mu:g})' if strategy == 'fedprox' else ''}, {rounds} round(s), "
        f"waiting for {min_sites} site(s) on {address}, TLS {'on' if certificates else 'OFF'}, base {base.version}"
    )
    flwr.server.start_server(
        server_address=address,
        config=ServerConfig(num_rounds=rounds),
        strategy=tracked,
        client_manager=manager,
        certificates=certificates,
    )
    done = [r for r in tracked.rounds if not r["failures"]]
    if len(done) < rounds or tracked.latest is None:
        raise TrainingError(f"the federation ended after {len(done)} of {rounds} round(s): no bundle written")
    record: dict[str, Any] = {
        "strategy": strategy,
        "proximal_mu": proximal_mu if strategy == "fedprox" else 0.0,
        "rounds": rounds,
        "local": {"steps": local.steps, "lr": local.lr, "batch": local.batch},
        "sites": sorted({s for r in tracked.rounds for s in r["sites"]}),
        "history": tracked.rounds,
        "refused": manager.refused,
        "tls": certificates is not None,
    }
    if privacy is not None:
        record["privacy"] = {
            "noise_multiplier": privacy.noise,
            "clipping_norm": privacy.clip,
            "delta": privacy.delta,
            "epsilon": dp_epsilon(privacy.noise, rounds, privacy.delta),
        }
        echo(f"differential privacy spent: epsilon {record['privacy']['epsilon']:.2f} at delta {privacy.delta:g} (site level)")
    final = set_weights(model, parameters_to_ndarrays(tracked.latest))
    bundle = write_bundle(base, final, out, work or out.parent / f".{out.name}-work", record)
    echo(f"wrote {out} ({bundle.version}): {len(record['sites'])} site(s), {rounds} round(s), INT8")
    return record


class SiteClient(NumPyClient):  # type: ignore[misc]
    """A site's Flower client: trains the global model locally, lets its canary judge each aggregate."""

    def __init__(self, state: SiteState, token: str) -> None:
        self.state, self.token = state, token
        self.rounds = 0

    def get_properties(self, config: dict[str, Scalar]) -> dict[str, Scalar]:
        return {"site": self.state.name, "token": self.token}

    def get_parameters(self, config: dict[str, Scalar]) -> list[np.ndarray]:
        return get_weights(self.state.current)

    def _check_base(self, config: dict[str, Scalar]) -> None:
        if config.get("base") != self.state.bundle.version:
            raise TrainingError(f"the server federates {config.get('base')}, this site holds {self.state.bundle.version}")

    def fit(self, parameters: list[np.ndarray], config: dict[str, Scalar]) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        self._check_base(config)
        cfg = LocalConfig(
            steps=int(config["steps"]),
            lr=float(config["lr"]),
            batch=int(config["batch"]),
            proximal_mu=float(config.get("proximal_mu", 0.0)),
        )
        round_ = int(config["round"])
        weights, loss = self.state.train(parameters, cfg, round_)
        self.rounds = max(self.rounds, round_)
        metrics: dict[str, Scalar] = {
            "loss": loss,
            "bytes_sent": weights_bytes(weights),
            "bytes_received": weights_bytes(parameters),
        }
        prox = f", FedProx mu {cfg.proximal_mu:g}" if cfg.proximal_mu > 0 else ""
        self.state.echo(f"site {self.state.name} round {round_}: {cfg.steps} local steps{prox}, loss {loss:.4f}")
        return weights, len(self.state.data.train), metrics

    def evaluate(self, parameters: list[np.ndarray], config: dict[str, Scalar]) -> tuple[float, int, dict[str, Scalar]]:
        self._check_base(config)
        decision: Decision = self.state.consider(parameters, int(config["round"]))
        return decision.canary_global, len(self.state.data.canary), {"adopted": int(decision.adopted)}


def join(state: SiteState, address: str, token: str, root_certificates: bytes | None, out: Path | None, work: Path) -> int:
    """Take part in a federation until the server ends it; write the site's current model if ``out``. Returns rounds done."""
    client = SiteClient(state, token)
    try:
        flwr.client.start_client(
            server_address=address,
            client=client.to_client(),
            root_certificates=root_certificates,
            insecure=root_certificates is None,
            max_retries=3,
            max_wait_time=30.0,
        )
    except grpc.RpcError as exc:  # the server closed the stream: refused, or gone
        if client.rounds == 0:
            raise TrainingError(
                f"site {state.name}: the server closed the connection before any round: refused (check --name and the "
                f"token, and the CA), or gone ({exc.code() if hasattr(exc, 'code') else exc})"
            ) from exc
        raise TrainingError(f"site {state.name}: the connection to the server broke after round {client.rounds}") from exc
    if client.rounds == 0:
        raise TrainingError(f"site {state.name}: the server ended the federation before any round with this site")
    adopted = sum(d.adopted for d in state.decisions)
    state.echo(f"site {state.name}: {client.rounds} round(s); adopted {adopted} of {len(state.decisions)} aggregated model(s)")
    if out is not None:
        record = {"site": state.name, "rounds": client.rounds, "decisions": [d.__dict__ for d in state.decisions]}
        bundle = write_bundle(state.bundle, state.current, out, work / "bundle", record)
        state.echo(f"site {state.name}: wrote its current model to {out} ({bundle.version})")
    return client.rounds
