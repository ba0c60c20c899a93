"""Shipped scenario files (data): demo.toml, test.toml, plant200.toml; a package so that wheels include them."""
