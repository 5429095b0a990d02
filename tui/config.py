"""Where wan-tui keeps things, and what the user configured.

One TOML file under the platform config dir; environment variables win over it;
`WAN_TUI_HOME` relocates everything (config, database, logs, default output folder).
API keys come from the environment or the config file (created 0600), never from a
command-line flag that `ps` would show, and never reach the database or logs.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.errors import ConfigError

PROVIDERS = ("venice", "apixo", "acedata")

DEFAULT_BASE_URLS = {
    "venice": "https://api.venice.ai/api/v1",
    "apixo": "https://api.apixo.ai/api/v1",
    "acedata": "https://api.acedata.cloud",
}
KEY_ENV = {"venice": "VENICE_API_KEY", "apixo": "APIXO_API_KEY", "acedata": "ACEDATA_API_TOKEN"}
URL_ENV = {"venice": "VENICE_BASE_URL", "apixo": "APIXO_BASE_URL", "acedata": "ACEDATA_BASE_URL"}

# Every environment variable wan-tui reads, wherever it is read, and what it does: `--help`
# and docs/reference/environment.md are written from this, and a test holds it to the names the
# code reads (a variable read but not listed here, or listed but read nowhere, fails it).
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("VENICE_API_KEY", "Venice's API key (wins over [providers.venice] api_key)"),
    ("APIXO_API_KEY", "APIXO's API key (wins over [providers.apixo] api_key)"),
    ("ACEDATA_API_TOKEN", "AceData Cloud's API token (wins over [providers.acedata] api_key)"),
    ("VENICE_BASE_URL", "another address for Venice's API (a proxy, the simulator)"),
    ("APIXO_BASE_URL", "another address for APIXO's API"),
    ("ACEDATA_BASE_URL", "another address for AceData Cloud's API"),
    ("WAN_TUI_HOME", "one folder for config, history, logs and videos"),
    ("WAN_TUI_OUTPUT_DIR", "where finished videos are saved (wins over output_dir)"),
    ("WAN_TUI_DELETE_REMOTE", "delete the provider's copy once ours is whole: true/false "
                              "(wins over delete_remote_after_download)"),
    ("WAN_TUI_ENGINE_IDLE_EXIT_S", "seconds the engine process waits with nothing to do "
                                   "before it exits (wins over engine_idle_exit_s)"),
    ("WAN_TUI_ENGINE_LEASE_S", "seconds a team's engine holds a job between heartbeats "
                               "before another may adopt it (wins over engine_lease_s)"),
    ("WAN_TUI_TIME_SCALE", "shrink every poll interval by this factor, 0 to 1 (for the "
                           "simulator)"),
    ("WAN_TUI_IMAGES", "how pictures are drawn: auto, kitty, sixel, halfblock or off (wins "
                       "over images; docs/media.md)"),
    ("WAN_TUI_SCREEN_FILE", "for tests: a file the dashboard keeps the text of its screen in, "
                            "after every frame"),
    ("WAN_TUI_DATABASE", "postgresql://USER@HOST/DB: a team's shared history (wins over "
                         "database; docs/team.md)"),
    ("WAN_TUI_ENGINE_NAME", "this machine's name as a team's engine (default: the host name)"),
)

# Read from the terminal's environment, not set for wan-tui: what they change.
TERMINAL_ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("TMUX", "inside tmux: pictures in half-blocks, OSC notices wrapped for tmux's passthrough"),
    ("STY", "inside GNU screen (or TERM=screen*): pictures in half-blocks"),
    ("TERM", "screen* means GNU screen (or tmux): pictures in half-blocks"),
    ("SSH_CONNECTION", "over SSH (or SSH_CLIENT, SSH_TTY): `o` shows and copies a file's path "
                       "instead of opening a viewer on the remote machine"),
    ("SSH_CLIENT", "as SSH_CONNECTION"),
    ("SSH_TTY", "as SSH_CONNECTION"),
    ("DISPLAY", "a desktop to open finished files on (or WAYLAND_DISPLAY)"),
    ("WAYLAND_DISPLAY", "as DISPLAY"),
)

# Every key of config.toml, as a user writes it, and what it does (docs/reference/environment.md;
# a test holds it to the keys load_config reads). Defaults come from Config's fields.
CONFIG_KEYS: tuple[tuple[str, str], ...] = (
    ("output_dir", "where finished videos are saved (default: wan-tui in the platform's videos "
                   "folder, or WAN_TUI_HOME/videos)"),
    ("delete_remote_after_download", "delete the provider's copy once ours is whole"),
    ("max_concurrent_jobs", "at most this many jobs followed at once"),
    ("engine_idle_exit_s", "the engine process exits after this many seconds with no job "
                           "to follow and no request (default 300)"),
    ("engine_lease_s", "on a team's database: seconds without a heartbeat after which "
                       "another machine's engine adopts a job (default 30)"),
    ("notify_when_batch_ends", "ring the bell and send an OSC 9 desktop notice when every "
                               "active job has ended"),
    ("write_sidecars", "write NAME.json (the video's recipe: prompt, model, parameters, seed, "
                       "remote id, cost) beside each video; the MP4's own tags carry it too"),
    ("theme", "the dashboard's Textual theme (ctrl+p: \"Change theme\" to try them)"),
    ("images", "how pictures are drawn: auto (what the terminal answers for), kitty, sixel, "
               "halfblock or off (docs/media.md)"),
    ("database", "postgresql://USER@HOST/DB: a team's shared history in PostgreSQL (default: "
                 "this machine's SQLite file; password in ~/.pgpass or PGPASSWORD)"),
    ("[providers.NAME] api_key", "the provider's key (NAME: venice, apixo, acedata); the "
                                 "file is kept readable by you alone"),
    ("[providers.NAME] base_url", "another address for the provider's API"),
    ("[keys] ID", "remap a dashboard key by its binding id, e.g. quote = \"ctrl+e\" (see "
                  "keys.md)"),
)

CONFIG_TEMPLATE = """\
# wan-tui configuration. Environment variables override what is set here.
# Keys may be set here (this file is kept readable by you alone) or in the environment:
# VENICE_API_KEY, APIXO_API_KEY, ACEDATA_API_TOKEN.

# output_dir = "~/Videos/wan-tui"
# delete_remote_after_download = false   # delete the provider's copy once ours is whole
# max_concurrent_jobs = 200
# engine_idle_exit_s = 300              # the engine process exits after this long with no work
# engine_lease_s = 30                  # a team's: another engine adopts a silent engine's jobs
# notify_when_batch_ends = true          # terminal bell + OSC 9 desktop notification
# write_sidecars = true                  # NAME.json with the recipe beside each video
# theme = "textual-dark"                 # the dashboard's colours (ctrl+p: "Change theme" to try)
# images = "auto"       # pictures: auto | kitty | sixel | halfblock | off (WAN_TUI_IMAGES wins)
# database = "postgresql://alice@db.studio.lan/wantui?sslmode=verify-full"
#                                        # a team's shared history (docs/team.md); password in
#                                        # ~/.pgpass or PGPASSWORD, not here; default: SQLite

[providers.venice]
# api_key = ""
# base_url = "https://api.venice.ai/api/v1"

[providers.apixo]
# api_key = ""

[providers.acedata]
# api_key = ""

[keys]
# remap dashboard keys by binding id, e.g. quote = "ctrl+e"
"""


@dataclass
class ProviderConfig:
    name: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)  # never printed

    @property
    def configured(self) -> bool:
        return bool(self.api_key)


@dataclass
class Config:
    home: Path
    config_file: Path
    db_path: Path
    output_dir: Path
    providers: dict[str, ProviderConfig]
    log_file: Path
    delete_remote_after_download: bool = False
    max_concurrent_jobs: int = 200
    # The engine process exits once nothing is active and no request waits for this long
    # (WAN_TUI_ENGINE_IDLE_EXIT_S over the config file; tests set it small).
    engine_idle_exit_s: float = 300.0
    # On a team's database: how long a job's lease lasts without a heartbeat before another
    # machine's engine adopts it (WAN_TUI_ENGINE_LEASE_S over the config file).
    engine_lease_s: float = 30.0
    notify_when_batch_ends: bool = True
    write_sidecars: bool = True  # NAME.json beside each video (its recipe is in the MP4 too)
    keymap: dict[str, str] = field(default_factory=dict)
    theme: str | None = None  # a Textual theme name for the dashboard
    images: str = "auto"  # how pictures are drawn (tui/termcaps.py); WAN_TUI_IMAGES wins
    # A PostgreSQL DSN for a team's shared history (WAN_TUI_DATABASE or `database`); None
    # keeps it in the SQLite file db_path. repr=False: it may hold a password.
    database: str | None = field(default=None, repr=False)

    @property
    def history(self) -> Path | str:
        """What tui.store.open_store takes: the server's DSN, else the SQLite file."""
        return self.database or self.db_path

    def provider(self, name: str) -> ProviderConfig:
        try:
            return self.providers[name]
        except KeyError:
            raise ConfigError(
                f"unknown provider {name!r}; choose one of {', '.join(PROVIDERS)}"
            ) from None


def _dirs() -> tuple[Path, Path, Path]:
    """(config dir, data dir, default output dir)."""
    home = os.environ.get("WAN_TUI_HOME")
    if home:
        base = Path(home).expanduser()
        return base, base, base / "videos"
    import platformdirs  # lazy: only needed without WAN_TUI_HOME

    return (
        Path(platformdirs.user_config_dir("wan-tui")),
        Path(platformdirs.user_data_dir("wan-tui")),
        Path(platformdirs.user_videos_dir()) / "wan-tui",
    )


def default_log_file() -> Path:
    """WAN_TUI_HOME/logs, or the platform's log folder (~/.local/state/wan-tui/log on Linux)."""
    home = os.environ.get("WAN_TUI_HOME")
    if home:
        return Path(home).expanduser() / "logs" / "wan-tui.log"
    import platformdirs

    return Path(platformdirs.user_log_dir("wan-tui")) / "wan-tui.log"


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err}); fix or delete the file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None


def _warn_if_readable_by_others(path: Path, data: dict[str, Any]) -> None:
    has_key = any(
        isinstance(p, dict) and p.get("api_key") for p in (data.get("providers") or {}).values()
    )
    if has_key and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        path.chmod(0o600)  # a key in a world-readable file: tighten rather than leak


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no"):
        return value.lower() in ("1", "true", "yes", "on")
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def load_config(env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    config_dir, data_dir, default_out = _dirs()
    config_file = config_dir / "config.toml"
    data = _read_toml(config_file)
    if data:
        _warn_if_readable_by_others(config_file, data)

    providers: dict[str, ProviderConfig] = {}
    section = data.get("providers") or {}
    for name in PROVIDERS:
        pdata = section.get(name) or {}
        base_url = env.get(URL_ENV[name]) or pdata.get("base_url") or DEFAULT_BASE_URLS[name]
        key = env.get(KEY_ENV[name]) or pdata.get("api_key") or None
        providers[name] = ProviderConfig(name, str(base_url).rstrip("/"), key)

    out = env.get("WAN_TUI_OUTPUT_DIR") or data.get("output_dir")
    output_dir = Path(out).expanduser() if out else default_out
    delete_after = data.get("delete_remote_after_download", False)
    if "WAN_TUI_DELETE_REMOTE" in env:
        delete_after = env["WAN_TUI_DELETE_REMOTE"]
    try:
        max_jobs = int(data.get("max_concurrent_jobs", 200))
    except (TypeError, ValueError):
        raise ConfigError("max_concurrent_jobs must be a whole number") from None
    if max_jobs < 1:
        raise ConfigError("max_concurrent_jobs must be at least 1")
    idle_exit = env.get("WAN_TUI_ENGINE_IDLE_EXIT_S", data.get("engine_idle_exit_s", 300))
    try:
        idle_exit_s = float(idle_exit)
    except (TypeError, ValueError):
        raise ConfigError("engine_idle_exit_s must be a number of seconds, e.g. 300") from None
    if not idle_exit_s >= 0:  # NaN fails this too
        raise ConfigError("engine_idle_exit_s must be 0 or more seconds, e.g. 300")
    lease = env.get("WAN_TUI_ENGINE_LEASE_S", data.get("engine_lease_s", 30))
    try:
        lease_s = float(lease)
    except (TypeError, ValueError):
        raise ConfigError("engine_lease_s must be a number of seconds, e.g. 30") from None
    if not 1 <= lease_s <= 3600:  # NaN fails this too
        raise ConfigError("engine_lease_s must be between 1 and 3600 seconds, e.g. 30")
    keymap = {str(k): str(v) for k, v in (data.get("keys") or {}).items()}
    images = _images(env, data.get("images"))
    database = _database(env.get("WAN_TUI_DATABASE") or data.get("database"))
    return Config(
        home=config_dir,
        config_file=config_file,
        db_path=data_dir / "history.db",
        output_dir=output_dir,
        providers=providers,
        log_file=default_log_file(),
        delete_remote_after_download=_as_bool(delete_after, "delete_remote_after_download"),
        max_concurrent_jobs=max_jobs,
        engine_idle_exit_s=idle_exit_s,
        engine_lease_s=lease_s,
        notify_when_batch_ends=_as_bool(data.get("notify_when_batch_ends", True), "notify"),
        write_sidecars=_as_bool(data.get("write_sidecars", True), "write_sidecars"),
        keymap=keymap,
        theme=str(data["theme"]) if data.get("theme") else None,
        images=images,
        database=database,
    )


def _images(env: dict[str, str], configured: Any) -> str:
    from tui.termcaps import normalize

    if env.get("WAN_TUI_IMAGES"):
        return normalize(env["WAN_TUI_IMAGES"], "WAN_TUI_IMAGES")
    if configured is None:
        return "auto"
    if not isinstance(configured, str):
        raise ConfigError(f"images = {configured!r}: choose one of auto, kitty, sixel, "
                          "halfblock, off")
    return normalize(configured, "images")


def machine_name() -> str:
    """This machine's name in a team (its engine's, and where its files are):
    WAN_TUI_ENGINE_NAME, else the host name."""
    import socket

    return os.environ.get("WAN_TUI_ENGINE_NAME") or socket.gethostname()


def _database(value: Any) -> str | None:
    """The team database's DSN, checked for its form only (connecting is the store's)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text.startswith(("postgresql://", "postgres://")):
        # Not echoed: a mistyped DSN may still hold a password.
        raise ConfigError("WAN_TUI_DATABASE (or `database` in the config) must be a "
                          "postgresql://USER@HOST/DATABASE URL; unset it to keep the history "
                          "in this machine's SQLite file")
    return text


def ensure_config_file(config: Config) -> Path:
    """Create the commented template (0600) if there is none; return its path."""
    path = config.config_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(CONFIG_TEMPLATE)
    return path
