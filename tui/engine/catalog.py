"""Model capabilities per provider, cached in the store and refreshed daily."""

from __future__ import annotations

from collections.abc import Mapping

from tui.engine.clock import Clock
from tui.jobs import JobRequest, ModelCaps, ValidationError
from tui.providers.base import Provider, ProviderError
from tui.store import Store

MAX_AGE_S = 24 * 3600


class Catalog:
    def __init__(self, store: Store, providers: Mapping[str, Provider], clock: Clock) -> None:
        self.store = store
        self.providers = providers
        self.clock = clock
        self._memo: dict[str, list[ModelCaps]] = {}

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            raise ValidationError(
                f"unknown provider {name!r}; choose one of {', '.join(self.providers)}"
            ) from None

    async def models(self, provider: str, *, refresh: bool = False) -> list[ModelCaps]:
        if provider in self._memo and not refresh:
            return self._memo[provider]
        cached = await self.store.cached_models(provider)
        fresh = cached is not None and self.clock.now() - cached[0] < MAX_AGE_S
        if cached is not None and fresh and not refresh:
            models = [ModelCaps.from_dict(m) for m in cached[1]]
        else:
            try:
                models = await self.provider(provider).list_models()
            except ProviderError:
                if cached is None:
                    raise
                models = [ModelCaps.from_dict(m) for m in cached[1]]  # stale beats nothing
            else:
                await self.store.save_models(provider, [m.to_dict() for m in models])
        self._memo[provider] = models
        return models

    async def caps(self, provider: str, model: str) -> ModelCaps:
        for refresh in (False, True):
            for caps in await self.models(provider, refresh=refresh):
                if caps.id == model:
                    return caps
        raise ValidationError(
            f"unknown model {model!r} for {provider}; `wan-tui models --provider {provider}` "
            "lists them"
        )

    async def prepare(self, req: JobRequest) -> JobRequest:
        """The request as it will be stored and sent: normalized, then fully validated."""
        req = self.provider(req.provider).normalize(req)
        await self.validate(req)
        return req

    async def validate(self, req: JobRequest) -> ModelCaps:
        """Everything we can check without spending: provider, model, every constraint."""
        provider = self.provider(req.provider)
        caps = await self.caps(req.provider, req.model)
        provider.validate(req, caps)
        return caps
