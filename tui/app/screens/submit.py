"""The submission modal: provider, then model, then only the fields that model takes.

Nothing here spends money. Every change is checked through the facade (debounced), the price
is asked as soon as the priced fields allow it, and Submit stays disabled until the request
is valid and its price is on screen. The screen returns a SubmitResult; the app submits it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Input, Label, OptionList, Select, Static, Switch, TextArea
from textual.widgets.option_list import Option

from tui.app.facade import Facade
from tui.app.screens.confirm import ConfirmScreen
from tui.app.screens.result import SubmitResult
from tui.config import KEY_ENV
from tui.images import image_argument
from tui.jobs import JobRequest, ModelCaps, ValidationError, price_key
from tui.providers.base import LocalRefusal, OptionSpec, ProviderError, ProviderInfo, Quote

DEBOUNCE_S = 0.2

PriceKey = tuple[object, ...]  # what jobs.price_key returns


@dataclass(frozen=True)
class PriceError:
    """Why the price for one request shape is missing. `local`: the request was refused
    before anything was asked (an incomplete form), so it is asked again once valid."""

    key: PriceKey
    message: str
    local: bool


@dataclass
class FormState:
    """Everything the form knows besides its widgets, in one place."""

    infos: dict[str, ProviderInfo]
    pending_model: str | None = None  # the model to pick once the list is in
    carry: dict[str, Any] = field(default_factory=dict)  # values kept across model changes
    provider: str | None = None
    models: list[ModelCaps] = field(default_factory=list)
    caps: ModelCaps | None = None
    touched: set[str] = field(default_factory=set)  # option switches the user set explicitly
    built: dict[str, bool] = field(default_factory=dict)  # each option switch's built value
    images: dict[tuple[str, Any], str | ValidationError] = field(default_factory=dict)
    debounce: Timer | None = None
    gen: int = 0  # bumps on every edit: stale validations are ignored
    last: JobRequest | None = None  # the last request the form could build
    valid: JobRequest | None = None  # ...and the facade accepted (this generation)
    quote: tuple[PriceKey, Quote] | None = None
    quoting: PriceKey | None = None
    quote_error: PriceError | None = None
    note: str | None = None  # said once the model list is in, instead of a count
    done: bool = False

    def option(self, name: str) -> OptionSpec:
        """How the chosen provider describes option `name` (unknown names: free text, so a
        new option works before anyone describes it)."""
        info = self.infos.get(self.provider or "")
        return (info.options.get(name) if info else None) or OptionSpec(name)


def takes_seed(caps: ModelCaps) -> bool:
    # ModelCaps has no seed flag; Venice's queue body has no seed field, so offering one
    # there would be a field that silently does nothing.
    return caps.provider != "venice"


def model_prompt(caps: ModelCaps) -> Text:
    """One line of the model list: id, type and a DEPRECATED marker with the replacement."""
    line = Text.assemble((caps.id, "bold"), "  ", (caps.model_type, "dim"))
    if caps.deprecation is not None:
        use = caps.deprecation.replacement
        line.append(f"  DEPRECATED{f' → {use}' if use else ''}", style="bold red")
    return line


def model_matches(caps: ModelCaps, words: list[str]) -> bool:
    haystack = f"{caps.id} {caps.name} {caps.model_type}".lower()
    return all(word in haystack for word in words)


def provider_prompt(info: ProviderInfo) -> Text:
    if not info.configured:
        env = KEY_ENV.get(info.name, "its API key")
        return Text.assemble((info.label, "dim"), (f"  not configured: set {env}", "dim italic"))
    note = "" if info.can_quote else "  (prices are estimates from a price table)"
    return Text.assemble((info.label, "bold"), (note, "dim"))


def values_from_request(req: JobRequest) -> dict[str, Any]:
    """An initial request as form values, keyed by the ids of the field widgets."""
    values: dict[str, Any] = {
        "duration": req.duration,
        "resolution": req.resolution,
        "aspect": req.aspect_ratio,
        "audio": req.audio,
        "image": req.image_url or "",
        "negative": req.negative_prompt or "",
        "seed": "" if req.seed is None else str(req.seed),
    }
    for name, value in req.options.items():
        values[f"opt-{name}"] = value
    return values


def pick(value: Any, allowed: Iterable[str]) -> str | None:
    """`value` if the model offers it (case-insensitively: "720P" == "720p"), else None."""
    if value is None:
        return None
    for choice in allowed:
        if str(value).lower() == choice.lower():
            return choice
    return None


def image_note(value: str, result: str | ValidationError, version: Any) -> str:
    """The line under the image field: what was understood, or why it is refused."""
    if isinstance(result, ValidationError):
        return str(result)
    if result.startswith("data:") and not value.startswith("data:") and version:
        mime = result[5:result.index(";")]
        return f"local {mime}, {version[1] / 1024:.0f} kB (sent inline as a data: URL)"
    if result.startswith("data:"):
        return "inline data: URL"
    return "URL: the provider fetches it"


def row(label: str, widget: Widget, hint: str = "") -> Horizontal:
    parts: list[Widget] = [Label(label, classes="field-label"), widget]
    if hint:
        parts.append(Label(hint, classes="hint"))
    return Horizontal(*parts, classes="row")


class SearchInput(Input):
    """The model filter: up/down move through the matches while typing continues."""

    BINDINGS = [
        Binding("down", "move(1)", "Next match", show=False, id="model_search.next"),
        Binding("up", "move(-1)", "Previous match", show=False, id="model_search.previous"),
    ]

    class Move(Message):
        def __init__(self, delta: int) -> None:
            super().__init__()
            self.delta = delta

    def action_move(self, delta: int) -> None:
        self.post_message(self.Move(delta))


class SubmitScreen(ModalScreen[SubmitResult | None]):
    """New job (or edit and re-submit an old one): returns SubmitResult or None."""

    BINDINGS = [
        Binding("escape", "close", "Cancel", id="close"),
        Binding("ctrl+s", "submit", "Submit", id="submit"),
        Binding("Q", "quote", "Quote", id="quote"),
    ]

    DEFAULT_CSS = """
    SubmitScreen { align: center middle; }
    SubmitScreen #dialog {
        width: 100; max-width: 95%; height: 92%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    SubmitScreen #title { text-style: bold; }
    SubmitScreen #form { height: 1fr; }
    SubmitScreen .heading { text-style: bold; margin-top: 1; }
    SubmitScreen #providers { height: auto; max-height: 5; }
    SubmitScreen #models { height: auto; max-height: 7; }
    SubmitScreen #model-info { color: $text-muted; }
    SubmitScreen #model-info.deprecated { color: $warning; }
    SubmitScreen #prompt { height: 6; }  /* four lines: the form fits 45 rows */
    SubmitScreen #prompt-count { color: $text-muted; text-align: right; }
    SubmitScreen #prompt-count.over { color: $error; text-style: bold; }
    SubmitScreen #model-fields { height: auto; }
    SubmitScreen .row { height: 1; margin-top: 1; }
    SubmitScreen .field-label { width: 24; }
    SubmitScreen .row Input, SubmitScreen .row Select { width: 1fr; }
    /* a one-line switch keeps the form compact; focus shows as the highlighted knob */
    SubmitScreen .row Switch { border: none; height: 1; padding: 0; width: 8; }
    SubmitScreen .hint { color: $text-muted; padding-left: 1; }
    SubmitScreen #image-status { color: $text-muted; padding-left: 24; }
    SubmitScreen #image-status.bad { color: $error; }
    SubmitScreen #price { padding-top: 1; text-style: bold; }
    SubmitScreen #price.bad { color: $error; }
    SubmitScreen #error { color: $error; }
    SubmitScreen #error.ready { color: $success; }
    SubmitScreen #buttons { height: auto; align-horizontal: right; }
    SubmitScreen #buttons Button { margin-left: 2; }
    """

    def __init__(self, facade: Facade, initial: JobRequest | None = None) -> None:
        super().__init__()
        self.facade = facade
        self.initial = initial
        self.form = FormState(
            infos={info.name: info for info in facade.providers()},
            pending_model=initial.model if initial else None,
            carry=values_from_request(initial) if initial else {},
        )

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Edit and re-submit" if self.initial else "New job", id="title")
            with VerticalScroll(id="form"):
                yield Label("Provider", classes="heading")
                yield OptionList(id="providers")
                yield Label("Model", classes="heading")
                yield SearchInput(placeholder="type to filter models; enter picks",
                                  id="model-search", compact=True)
                yield OptionList(id="models")
                yield Static("", id="model-info")
                yield Label("Prompt", classes="heading")
                yield TextArea(self.initial.prompt if self.initial else "", id="prompt",
                               soft_wrap=True)
                yield Static("", id="prompt-count")
                yield Vertical(id="model-fields")
            yield Static("", id="price")
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Submit", id="submit", variant="primary", disabled=True,
                             compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    async def on_mount(self) -> None:
        providers = self.query_one("#providers", OptionList)
        # Options are added after mount: the constructor would highlight the first one
        # and race the initial provider choice below.
        providers.add_options(
            Option(provider_prompt(info), id=info.name, disabled=not info.configured)
            for info in self.form.infos.values()
        )
        first = self._first_provider()
        if first is None:
            needed = ", ".join(KEY_ENV.get(name, name) for name in self.form.infos)
            self._show_error(f"no provider is configured: set one of {needed}")
            return
        providers.highlighted = providers.get_option_index(first)
        providers.focus()
        self._update_count()
        if self.initial is not None and self.initial.provider != first:
            # Re-submitting a job whose provider has no key here: its model means nothing
            # to another provider, so say why the form starts without one.
            self.form.pending_model = None
            env = KEY_ENV.get(self.initial.provider, "its API key")
            self.form.note = (f"{self.initial.provider} is not configured (set {env}): "
                          f"pick a {self.form.infos[first].label} model instead")
        await self._choose_provider(first)

    def _first_provider(self) -> str | None:
        wanted = self.initial.provider if self.initial else None
        configured = [name for name, info in self.form.infos.items() if info.configured]
        if wanted in configured:
            return wanted
        return configured[0] if configured else None

    # ------------------------------------------------------------ provider and model

    @on(OptionList.OptionHighlighted, "#providers")
    async def _provider_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and not event.option.disabled:
            await self._choose_provider(event.option.id)

    async def _choose_provider(self, name: str) -> None:
        if name == self.form.provider or not self.form.infos[name].configured:
            return
        if self.form.caps is not None:
            self.form.carry = {**self.form.carry, **self._field_values()}
        self.form.provider = name
        self.form.caps = None
        self.form.models = []
        self.query_one("#models", OptionList).clear_options()
        self._set_model_info(f"loading {self.form.infos[name].label} models…")
        await self.query_one("#model-fields").remove_children()
        self._update_count()
        self._changed()
        self._load_models(name)

    @work(exclusive=True, group="submit-models", exit_on_error=False)
    async def _load_models(self, provider: str) -> None:
        try:
            models = await self.facade.models(provider)
        except ProviderError as err:
            if provider == self.form.provider:
                self._set_model_info(f"cannot list models: {err}", warn=True)
            return
        if provider != self.form.provider:
            return  # the user moved on while the list loaded
        self.form.models = models
        self._filter_models()
        pending, self.form.pending_model = self.form.pending_model, None
        if pending and any(m.id == pending for m in models):
            await self._choose_model(pending)
        elif pending:
            self._set_model_info(f"{pending} is no longer offered by {provider}: pick another",
                                 warn=True)
        else:
            note, self.form.note = self.form.note, None
            self._set_model_info(note or f"{len(models)} models: type to filter, enter picks",
                                 warn=note is not None)

    def _filter_models(self) -> None:
        words = self.query_one("#model-search", Input).value.lower().split()
        models = self.query_one("#models", OptionList)
        matches = [m for m in self.form.models if model_matches(m, words)]
        models.set_options(Option(model_prompt(m), id=m.id) for m in matches)
        if matches:
            models.highlighted = 0

    @on(Input.Changed, "#model-search")
    def _search_changed(self) -> None:
        self._filter_models()

    @on(SearchInput.Move)
    def _search_move(self, event: SearchInput.Move) -> None:
        models = self.query_one("#models", OptionList)
        if models.option_count:
            current = models.highlighted if models.highlighted is not None else -1
            models.highlighted = max(0, min(models.option_count - 1, current + event.delta))

    @on(Input.Submitted, "#model-search")
    async def _search_submitted(self) -> None:
        option = self.query_one("#models", OptionList).highlighted_option
        if option is not None and option.id:
            await self._choose_model(option.id)

    @on(OptionList.OptionSelected, "#models")
    async def _model_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            await self._choose_model(event.option.id)

    async def _choose_model(self, model_id: str) -> None:
        caps = next((m for m in self.form.models if m.id == model_id), None)
        if caps is None:
            return
        if self.form.caps is not None:
            self.form.carry = {**self.form.carry, **self._field_values()}
        self.form.caps = None  # the fields are being rebuilt: nothing may read them meanwhile
        fields = self.query_one("#model-fields")
        await fields.remove_children()
        self.form.touched = {key for key in self.form.carry if key.startswith("opt-")}
        self.form.built = {}
        await fields.mount_all(self._fields_for(caps, self.form.carry))
        self.form.caps = caps
        info = f"{caps.id} · {caps.model_type} · {caps.name}"
        dep = caps.deprecation
        if dep is not None:
            info += f"\nDEPRECATED{f' on {dep.date}' if dep.date else ''}"
            info += f": use {dep.replacement}" if dep.replacement else ""
            info += f"\n{dep.remap_note()}" if dep.remap_note() else ""
        self._set_model_info(info, warn=dep is not None)
        self._update_count()
        self._changed()
        self.query_one("#prompt", TextArea).focus()

    def _set_model_info(self, text: str, warn: bool = False) -> None:
        info = self.query_one("#model-info", Static)
        info.update(text)
        info.set_class(warn, "deprecated")

    # ------------------------------------------------------------ the model's fields

    def _fields_for(self, caps: ModelCaps, values: dict[str, Any]) -> list[Widget]:
        """Widgets for exactly what `caps` takes, pre-filled from `values` where still valid."""
        rows: list[Widget] = [self._duration_row(caps, values.get("duration"))]
        if caps.resolutions:
            rows.append(row("Resolution", self._choice(
                "resolution", caps.resolutions, pick(values.get("resolution"), caps.resolutions),
                "provider default")))
        if caps.aspect_ratios:
            rows.append(row("Aspect ratio", self._choice(
                "aspect", caps.aspect_ratios, pick(values.get("aspect"), caps.aspect_ratios),
                "provider default")))
        if caps.audio_configurable:
            audio = values.get("audio")
            on_ = caps.audio if audio is None else bool(audio)
            rows.append(row("Audio", Switch(on_, id="audio", classes="value"),
                            f"default {'on' if caps.audio else 'off'}"))
        if caps.accepts_image or caps.requires_image:
            need = "required" if caps.requires_image else "optional"
            rows.append(row(f"Image ({need})", Input(
                values.get("image") or "", placeholder="local file or http(s) URL",
                id="image", classes="value", compact=True)))
            rows.append(Static("", id="image-status"))
        limit = caps.negative_prompt_limit
        rows.append(row("Negative prompt", Input(
            values.get("negative") or "", id="negative", classes="value", compact=True,
            placeholder="what to avoid" + (f" (≤ {limit} characters)" if limit else ""))))
        if takes_seed(caps):
            rows.append(row("Seed", Input(values.get("seed") or "", type="integer", id="seed",
                                          classes="value", placeholder="random", compact=True)))
        rows.extend(self._option_row(name, values.get(f"opt-{name}")) for name in caps.options)
        return rows

    def _duration_row(self, caps: ModelCaps, value: Any) -> Horizontal:
        if not caps.durations:  # the provider published no list: any whole seconds
            return row("Duration", Input(str(value or "5s"), id="duration", classes="value",
                                             compact=True))
        chosen = pick(value, caps.durations) or caps.durations[0]
        return row("Duration", Select(((d, d) for d in caps.durations), value=chosen,
                                      allow_blank=False, id="duration", classes="value",
                                      compact=True))

    @staticmethod
    def _choice(wid: str, choices: Iterable[str], value: str | None, blank: str) -> Select:
        return Select(((c, c) for c in choices), value=value if value else Select.NULL,
                      allow_blank=True, prompt=blank, id=wid, classes="value", compact=True)

    def _option_row(self, name: str, value: Any) -> Horizontal:
        wid = f"opt-{name}"
        spec = self.form.option(name)
        if spec.kind == "bool":
            # Untouched switches are not sent: the provider's default applies, whatever it is.
            self.form.built[wid] = bool(value)
            return row(name, Switch(bool(value), id=wid, classes="value"),
                       "sent" if wid in self.form.touched else "not sent: provider default")
        if spec.kind == "choice":
            return row(name, self._choice(wid, spec.choices, pick(value, spec.choices),
                                          "provider default"))
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        return row(name, Input("" if value is None else str(value), id=wid, classes="value",
                               placeholder=spec.hint, compact=True))

    def _field_values(self) -> dict[str, Any]:
        """What the model's fields hold now, keyed by widget id (untouched switches left out)."""
        out: dict[str, Any] = {}
        for widget in self.query_one("#model-fields").query(".value"):
            wid = widget.id or ""
            if isinstance(widget, Select):
                out[wid] = None if widget.is_blank() else widget.value
            elif isinstance(widget, Switch):
                # A toggle counts even before its Changed message is handled.
                form = self.form
                if wid == "audio" or wid in form.touched or widget.value != form.built.get(wid):
                    out[wid] = widget.value
            elif isinstance(widget, Input):
                out[wid] = widget.value
        return out

    # ------------------------------------------------------------ building the request

    def _request(self) -> JobRequest:
        """The form as a request. Raises ValidationError for what the form itself can tell."""
        caps = self.form.caps
        if self.form.provider is None:
            raise ValidationError("choose a provider")
        if caps is None:
            raise ValidationError("choose a model: type in the model filter, enter picks")
        values = self._field_values()
        audio = values.get("audio")
        seed = (values.get("seed") or "").strip()
        if seed and not seed.lstrip("-").isdigit():
            raise ValidationError(f"seed {seed!r} is not a whole number")
        return JobRequest(
            model=caps.id,
            provider=caps.provider,
            prompt=self.query_one("#prompt", TextArea).text,
            duration=str(values.get("duration") or ""),
            resolution=values.get("resolution"),
            aspect_ratio=values.get("aspect"),
            # Sending the default changes nothing but the request; leave it to the provider.
            audio=None if audio is None or audio == caps.audio else bool(audio),
            negative_prompt=(values.get("negative") or "").strip() or None,
            image_url=self._image_url((values.get("image") or "").strip()),
            seed=int(seed) if seed else None,
            options=self._options(caps, values),
        )

    def _options(self, caps: ModelCaps, values: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in caps.options:
            value = values.get(f"opt-{name}")
            if value is None or value == "":
                continue
            kind = self.form.option(name).kind
            if isinstance(value, bool) or kind == "choice":
                out[name] = value
            elif kind == "list":
                urls = [part.strip() for part in str(value).split(",") if part.strip()]
                if urls:
                    out[name] = urls
            else:
                out[name] = str(value).strip()
        return out

    def _image_url(self, value: str) -> str | None:
        """Check a local image on the spot (cached per file version) and say what it is."""
        status = next(iter(self.query("#image-status").results(Static)), None)
        if not value:
            if status is not None:
                status.update("")
            return None
        try:
            stat = Path(value).expanduser().stat()
            version: Any = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            version = None
        key = (value, version)
        if key not in self.form.images:
            try:
                self.form.images[key] = image_argument(value)
            except ValidationError as err:
                self.form.images[key] = err
        result = self.form.images[key]
        if status is not None:
            status.set_class(isinstance(result, ValidationError), "bad")
            status.update(image_note(value, result, version))
        if isinstance(result, ValidationError):
            raise result
        return result

    # ------------------------------------------------------------ checking and pricing

    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self) -> None:
        self._update_count()
        self._changed()

    @on(Input.Changed, ".value")
    @on(Select.Changed, ".value")
    def _field_changed(self) -> None:
        self._changed()

    @on(Switch.Changed, ".value")
    def _switch_changed(self, event: Switch.Changed) -> None:
        wid = event.switch.id or ""
        if wid.startswith("opt-") and wid not in self.form.touched:
            self.form.touched.add(wid)
            if event.switch.parent is not None:
                for hint in event.switch.parent.query(".hint").results(Label):
                    hint.update("sent")
        self._changed()

    def _update_count(self) -> None:
        count = self.query_one("#prompt-count", Static)
        length = len(self.query_one("#prompt", TextArea).text)
        limit = self.form.caps.prompt_limit if self.form.caps else None
        count.update(f"{length} / {limit} characters" if limit else f"{length} characters")
        count.set_class(limit is not None and length > limit, "over")

    def _changed(self) -> None:
        """Any edit: nothing is submittable until the new form is checked (debounced)."""
        self.form.gen += 1
        self.form.valid = None
        self._refresh()
        if self.form.debounce is not None:
            self.form.debounce.stop()
        self.form.debounce = self.set_timer(DEBOUNCE_S, self._check_now)

    def _check_now(self) -> None:
        try:
            req = self._request()
        except ValidationError as err:
            self.form.last = None
            self._show_error(str(err))
            self._refresh()
            return
        self.form.last = req
        self._maybe_price(req, valid=False)  # a quote endpoint prices the shape alone
        self._validate(self.form.gen, req)

    @work(exclusive=True, group="submit-validate", exit_on_error=False)
    async def _validate(self, gen: int, req: JobRequest) -> None:
        try:
            await self.facade.validate(req)
            error = None
        except ValidationError as err:
            error = str(err)
        except ProviderError as err:
            error = f"cannot check the request: {err}"
        if gen != self.form.gen:
            return  # edited meanwhile: a newer check is on its way
        if error is not None:
            self._show_error(error)
        else:
            self.form.valid = req
            self._show_error("")
            self._maybe_price(req, valid=True)
        self._refresh()

    def _maybe_price(self, req: JobRequest, *, valid: bool, force: bool = False) -> None:
        key = price_key(req)
        if not force:
            if self.form.quoting == key or (self.form.quote and self.form.quote[0] == key):
                return
            failed = self.form.quote_error
            # A price-table provider refuses an incomplete request locally: ask again once
            # the request is valid. A real refusal for this shape is not asked twice.
            if failed and failed.key == key and not (failed.local and valid):
                return
        self._price(req)

    @work(exclusive=True, group="submit-quote", exit_on_error=False)
    async def _price(self, req: JobRequest) -> None:
        key = price_key(req)
        self.form.quoting = key
        self._refresh()
        try:
            quote = await self.facade.quote(req)
        except (ProviderError, ValidationError) as err:
            local = isinstance(err, ValidationError | LocalRefusal)
            self.form.quote_error = PriceError(key, str(err), local)
        except Exception as err:  # a price failure must never take the modal down
            self.form.quote_error = PriceError(key, f"{type(err).__name__}: {err}", False)
        else:
            self.form.quote = (key, quote)
            self.form.quote_error = None
        finally:
            if self.form.quoting == key:
                self.form.quoting = None
        self._refresh()

    def _ready(self) -> bool:
        valid, quote = self.form.valid, self.form.quote
        return valid is not None and quote is not None and quote[0] == price_key(valid)

    def _refresh(self) -> None:
        """Price line, status line and the Submit button from the current state."""
        last = self.form.last
        key = price_key(last) if last is not None else None
        price = self.query_one("#price", Static)
        bad = False
        if last is None:
            text = "price: shown once a model is chosen and the request builds"
        elif self.form.quoting == key:
            text = f"price: asking {self.form.infos[last.provider].label}…"
        elif self.form.quote and self.form.quote[0] == key:
            text = f"price: {self.form.quote[1].label()}"
        elif (failed := self.form.quote_error) and failed.key == key and not failed.local:
            text, bad = f"price: {failed.message}", True
        else:
            text = "price: shown once the request is valid"
        price.update(text)
        price.set_class(bad, "bad")
        ready = self._ready()
        self.query_one("#submit", Button).disabled = not ready
        line = self.query_one("#error", Static)
        if ready:
            self._show_error("ready: Submit (ctrl+s) records and sends it", ready=True)
        elif line.has_class("ready"):
            self._show_error("")  # edited since: the next check says what it finds

    def _show_error(self, text: str, ready: bool = False) -> None:
        line = self.query_one("#error", Static)
        line.update(text)
        line.set_class(ready, "ready")

    # ------------------------------------------------------------ actions

    def action_quote(self) -> None:
        """Ask the price again (the engine answers identical shapes from its cache)."""
        try:
            req = self._request()
        except ValidationError as err:
            self._show_error(str(err))
            return
        self.form.last = req
        self.form.quote_error = None
        self._maybe_price(req, valid=self.form.valid == req, force=True)

    async def action_submit(self) -> None:
        """Check once more, right now: a debounce must never let a stale state through."""
        if self.form.done:
            return
        try:
            req = self._request()
            await self.facade.validate(req)
        except (ValidationError, ProviderError) as err:
            self._show_error(str(err))
            return
        priced = self.form.quote
        quote = priced[1] if priced and priced[0] == price_key(req) else None
        if quote is None:
            self._show_error("no price for this request yet: wait for it (Q asks again)")
            return
        self.form.done = True
        self.dismiss(SubmitResult([req], [quote]))

    def action_close(self) -> None:
        if self.form.done:
            return
        typed = self.query_one("#prompt", TextArea).text
        if typed.strip() and typed != (self.initial.prompt if self.initial else ""):
            # A typed prompt can be minutes of work: esc asks before throwing it away.
            def answered(discard: bool | None) -> None:
                if discard:
                    self._discard()
            self.app.push_screen(ConfirmScreen(
                "Discard this prompt?", f"{len(typed)} characters typed; nothing was sent.",
                "Discard"), answered)
            return
        self._discard()

    def _discard(self) -> None:
        if not self.form.done:
            self.form.done = True
            self.dismiss(None)

    @on(Button.Pressed, "#submit")
    async def _submit_pressed(self) -> None:
        await self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_close()
