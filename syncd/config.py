"""Settings: a TOML file, `SYNCD_<SECTION>__<KEY>` env overrides, secret files in $CREDENTIALS_DIRECTORY."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_PATH = "/etc/syncd/config.toml"
CHANNEL_NAMES = ("amazon", "mercadolibre", "threepl")


class ConfigError(Exception):
    """A config file that cannot be used; the message names each bad key and its problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _parse_listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


class DaemonSettings(_Section):
    """Process-wide settings."""

    database: Path = Path("/var/lib/syncd/syncd.db")
    public_listen: str = "0.0.0.0:8780"
    admin_listen: str = "127.0.0.1:8781"
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # A webhook body larger than this is refused with 413 before it is parsed.
    max_webhook_bytes: int = Field(default=256 * 1024, gt=0)
    writer_batch_max: int = Field(default=256, gt=0)
    reservation_sweep_seconds: float = Field(default=5.0, gt=0)
    health_check_seconds: float = Field(default=5.0, gt=0)

    @field_validator("public_listen", "admin_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _parse_listen(value)


class OutboxSettings(_Section):
    """Retry queue policy: `min(cap, base·2^attempts)·random(0.5‥1)` or Retry-After, whichever later."""

    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_cap_seconds: float = Field(default=300.0, gt=0)
    # Transient failures before a push is declared dead; 429s do not count against it.
    max_attempts: int = Field(default=12, gt=0)
    # 429 deferrals allowed per push before they start to count as attempts.
    deferral_budget: int = Field(default=50, ge=0)
    concurrency_per_channel: int = Field(default=4, gt=0)


class StockSettings(_Section):
    """Reconciliation policy for counts and drift."""

    # A lower-priority count is refused while a higher-priority source reported within this window.
    authority_window_seconds: float = Field(default=3600.0, ge=0)
    # |drift| at or above this raises an alert.
    drift_alert_threshold: int = Field(default=2, ge=1)
    default_reservation_ttl_seconds: int = Field(default=900, gt=0)
    # A listing showing what syncd did not cause is re-pushed only if that lasts this long (a sale's
    # notification may trail the marketplace's own quantity change).
    observation_grace_seconds: float = Field(default=120.0, ge=0)


class LocationSettings(_Section):
    """A stock pool and who may count it, highest priority first."""

    name: str = ""
    kind: Literal["warehouse", "fba", "shelf"] = "warehouse"
    sources: list[str] = Field(default_factory=lambda: ["manual"])


class ChannelSettings(_Section):
    """Keys every channel shares."""

    enabled: bool = False
    api_base: str = ""
    webhook_secret: SecretStr = SecretStr("")
    lag_threshold_seconds: float = Field(default=300.0, gt=0)
    # Consecutive failures after which a channel is reported down rather than lagging.
    down_after_failures: int = Field(default=5, gt=0)
    request_timeout_seconds: float = Field(default=15.0, gt=0)
    # Operation name -> requests per second; overrides the published usage plan.
    rate_limits: dict[str, float] = Field(default_factory=dict)
    orders_poll_seconds: float = Field(default=120.0, gt=0)
    stock_poll_seconds: float = Field(default=300.0, gt=0)
    listings_poll_seconds: float = Field(default=3600.0, gt=0)
    location: str = "main"


class AmazonSettings(ChannelSettings):
    """Amazon SP-API (LWA auth)."""

    api_base: str = "https://sellingpartnerapi-na.amazon.com"
    token_url: str = "https://api.amazon.com/auth/o2/token"
    seller_id: str = ""
    marketplace_ids: list[str] = Field(default_factory=lambda: ["ATVPDKIKX0DER"])
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    refresh_token: SecretStr = SecretStr("")
    sqs_queue_url: str = ""
    sqs_endpoint_url: str = ""
    sqs_region: str = "us-east-1"
    aws_access_key_id: str = ""
    aws_secret_access_key: SecretStr = SecretStr("")
    fba_location: str = ""


class MercadoLibreSettings(ChannelSettings):
    """MercadoLibre (OAuth with single-use rotating refresh tokens)."""

    api_base: str = "https://api.mercadolibre.com"
    token_url: str = "https://api.mercadolibre.com/oauth/token"
    site_id: str = "MLM"
    user_id: int = 0
    application_id: int = 0
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    refresh_token: SecretStr = SecretStr("")


class ThreePLSettings(ChannelSettings):
    """ShipBob-style 3PL REST API."""

    api_base: str = "https://api.shipbob.com"
    api_version: str = "2026-07"
    api_token: SecretStr = SecretStr("")


class ChannelsSettings(_Section):
    """One table per channel; `enabled = false` skips it."""

    amazon: AmazonSettings = Field(default_factory=AmazonSettings)
    mercadolibre: MercadoLibreSettings = Field(default_factory=MercadoLibreSettings)
    threepl: ThreePLSettings = Field(default_factory=ThreePLSettings)

    def enabled(self) -> dict[str, ChannelSettings]:
        """The enabled channels by name."""
        found: dict[str, ChannelSettings] = {
            "amazon": self.amazon,
            "mercadolibre": self.mercadolibre,
            "threepl": self.threepl,
        }
        return {name: cfg for name, cfg in found.items() if cfg.enabled}


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix="SYNCD_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    stock: StockSettings = Field(default_factory=StockSettings)
    locations: dict[str, LocationSettings] = Field(
        default_factory=lambda: {"main": LocationSettings(name="Main stock", sources=["threepl", "manual"])}
    )
    channels: ChannelsSettings = Field(default_factory=ChannelsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit init values, env, secret files, then the TOML file.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if cred_dir and Path(cred_dir).is_dir():
            # Files named like `channels__amazon__client_secret` (systemd LoadCredential=).
            sources.append(
                NestedSecretsSettingsSource(
                    file_secret_settings,
                    secrets_dir=cred_dir,
                    secrets_nested_delimiter="__",
                    env_prefix="",
                )
            )
        toml_path = _TOML_PATH.get("path")
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


# pydantic-settings builds sources from class state; this carries the path for one load.
_TOML_PATH: dict[str, Path | None] = {"path": None}


def _describe(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        problem = item["msg"]
        if item["type"] == "extra_forbidden":
            problem = "unknown key"
        lines.append(f"  {key}: {problem}")
    return "\n".join(lines)


def resolve_config_path(explicit: str | None) -> Path:
    """`--config`, else `$SYNCD_CONFIG`, else /etc/syncd/config.toml."""
    return Path(explicit or os.environ.get("SYNCD_CONFIG") or DEFAULT_CONFIG_PATH)


def load_settings(path: Path | None, **overrides: Any) -> Settings:
    """Load and validate settings; raise ConfigError naming every bad key."""
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path}: not found")
    _TOML_PATH["path"] = path
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        where = f"config file {path}" if path else "configuration"
        raise ConfigError(f"{where} is invalid:\n{_describe(err)}") from None
    except ValueError as err:  # TOML syntax errors surface as ValueError subclasses
        raise ConfigError(f"config file {path}: {err}") from None
    finally:
        _TOML_PATH["path"] = None
    _check_references(settings)
    return settings


# Keys an enabled channel cannot work without.
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "amazon": ("api_base", "token_url", "seller_id", "client_id", "client_secret", "refresh_token"),
    "mercadolibre": ("api_base", "token_url", "user_id", "client_id", "client_secret", "refresh_token",
                     "webhook_secret"),
    "threepl": ("api_base", "api_token", "webhook_secret"),
}


def _is_empty(value: Any) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value in ("", 0, None) or value == []


def _check_references(settings: Settings) -> None:
    problems = []
    for name, channel in settings.channels.enabled().items():
        if channel.location not in settings.locations:
            problems.append(f"  channels.{name}.location: unknown location {channel.location!r}")
        for key in REQUIRED_KEYS.get(name, ()):
            if _is_empty(getattr(channel, key)):
                problems.append(f"  channels.{name}.{key}: required when the channel is enabled")
    known_sources = {"manual", *CHANNEL_NAMES}
    for loc_id, loc in settings.locations.items():
        for source in loc.sources:
            if source not in known_sources:
                problems.append(f"  locations.{loc_id}.sources: unknown source {source!r}")
    if problems:
        raise ConfigError("configuration is invalid:\n" + "\n".join(problems))
