"""Provider adapters behind one interface (see base.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.config import Config
    from tui.providers.base import Provider


def build_provider(name: str, base_url: str, api_key: str | None) -> Provider:
    # Imports are lazy so a CLI call pays only for the adapter it uses.
    if name == "venice":
        from tui.providers.venice import VeniceProvider

        return VeniceProvider(base_url, api_key)
    if name == "apixo":
        from tui.providers.apixo import ApixoProvider

        return ApixoProvider(base_url, api_key)
    if name == "acedata":
        from tui.providers.acedata import AceDataProvider

        return AceDataProvider(base_url, api_key)
    raise ValueError(f"unknown provider {name!r}")


def build_providers(config: Config) -> dict[str, Provider]:
    return {
        name: build_provider(name, pc.base_url, pc.api_key)
        for name, pc in config.providers.items()
    }
