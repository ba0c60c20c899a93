"""`forewarn federate`: federated fine-tuning of a bundle's student across sites (Flower).

Flower and torch are imported only when a command runs: without the [federate] extra the
command names the extra it needs (forewarn.cli.missing_extra), and `--help` works anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def federate() -> None:
    """Fine-tune a bundle's student across sites with Flower: only model updates leave a site."""


@federate.command("server")
@click.option("--from", "base", required=True, type=_DIR, help="base bundle (with its FP32 student); every site holds the same")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="bundle to write (replaced)")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--min-sites", type=click.IntRange(min=1), default=2, show_default=True, help="sites each round waits for")
@click.option("--sites", "sites_file", required=True, type=_FILE, help="TOML [sites] table: name = token of each site allowed")
@click.option("--address", default="0.0.0.0:8080", show_default=True, help="host:port to listen on")
@click.option("--strategy", type=click.Choice(["fedavg", "fedprox"]), default="fedavg", show_default=True)
@click.option("--mu", type=float, default=0.01, show_default=True, help="FedProx proximal weight")
@click.option("--steps", type=click.IntRange(min=0), default=20, show_default=True, help="local training steps per round")
@click.option("--lr", type=float, default=3e-4, show_default=True, help="local learning rate")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--ca", type=_FILE, help="CA certificate (PEM) of the server's certificate; with --cert and --key: TLS")
@click.option("--cert", type=_FILE, help="server certificate (PEM)")
@click.option("--key", type=_FILE, help="server private key (PEM)")
@click.option("--dp-noise", type=float, help="differential privacy: Gaussian noise multiplier on the clipped sum")
@click.option("--dp-clip", type=float, default=1.0, show_default=True, help="differential privacy: per-site update norm clip")
@click.option("--dp-delta", type=float, default=1e-5, show_default=True)
@click.option("--save-rounds", type=click.Path(file_okay=False, path_type=Path), help="keep each round's aggregate here (npz)")
def server(
    base: Path,
    out: Path,
    rounds: int,
    min_sites: int,
    sites_file: Path,
    address: str,
    strategy: str,
    mu: float,
    steps: int,
    lr: float,
    batch: int,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
    dp_noise: float | None,
    dp_clip: float,
    dp_delta: float,
    save_rounds: Path | None,
) -> None:
    """Run a federation of ROUNDS rounds and write the aggregated student as an INT8 bundle."""
    from models.federate.flower import Privacy, read_sites, serve
    from models.federate.local import LocalConfig

    tls = (ca, cert, key)
    if any(tls) and not all(tls):
        raise click.UsageError("TLS needs all of --ca, --cert and --key")
    certificates = (ca.read_bytes(), cert.read_bytes(), key.read_bytes()) if ca and cert and key else None
    if certificates is None:
        click.echo("warning: no TLS: site tokens and weights cross the network in the clear", err=True)
    privacy = Privacy(dp_noise, dp_clip, dp_delta) if dp_noise is not None else None
    serve(
        base,
        out,
        address,
        rounds,
        min_sites,
        read_sites(sites_file),
        strategy=strategy,
        proximal_mu=mu,
        local=LocalConfig(steps=steps, lr=lr, batch=batch),
        certificates=certificates,
        privacy=privacy,
        save_rounds=save_rounds,
        echo=click.echo,
    )


@federate.command("site")
@click.argument("directories", nargs=-1, required=True, type=_DIR)
@click.option("--from", "base", required=True, type=_DIR, help="the base bundle the server federates")
@click.option("--server", "address", required=True, help="host:port of the federation server")
@click.option("--name", required=True, help="this site's name, as in the server's sites file")
@click.option("--token-file", type=_FILE, help="file holding this site's token [else $FOREWARN_FEDERATE_TOKEN]")
@click.option("--ca", type=_FILE, help="CA certificate (PEM) that signed the server's certificate: TLS")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="write the site's model at the end as a bundle")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), help="window cache [default: runs/federate-<name>]")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the canary split and local batches")
def site(
    directories: tuple[Path, ...],
    base: Path,
    address: str,
    name: str,
    token_file: Path | None,
    ca: Path | None,
    out: Path | None,
    work: Path | None,
    seed: int,
) -> None:
    """Take part in a federation with this site's datasets DIRECTORIES; only weights leave the site."""
    from models.federate.flower import join
    from models.federate.local import SiteState

    token = token_file.read_text().strip() if token_file else os.environ.get("FOREWARN_FEDERATE_TOKEN", "")
    if not token:
        raise click.UsageError("the site's token: --token-file FILE or FOREWARN_FEDERATE_TOKEN")
    if ca is None:
        click.echo("warning: no TLS (--ca): the token and weights cross the network in the clear", err=True)
    work = work or Path("runs") / f"federate-{name}"
    state = SiteState(name, base, directories, work, seed=seed, echo=click.echo)
    join(state, address, token, ca.read_bytes() if ca else None, out, work)
