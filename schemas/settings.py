"""Settings: environment (``ALIGNLOOP_*``) over ``configs/pipeline.yaml`` over defaults. Loaded once per command.

The area config files (judges, scrub, drift) are settings too: their paths are fields here, and the composition
root (``alignloop/``) loads each file once per process and passes the loaded object down.
"""
from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar

import yaml

from pydantic import BaseModel, Field, FilePath, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError

DEFAULT_CONFIG = "configs/pipeline.yaml"
CONFIG_ENV = "ALIGNLOOP_CONFIG"
ENV_PREFIX = "ALIGNLOOP_"
# ALIGNLOOP_* variables that are not Settings fields, and who reads them. Any other ALIGNLOOP_* name in the
# environment is a typo: load_settings refuses it, naming the closest known one.
OTHER_ENV: dict[str, str] = {
    CONFIG_ENV: "the settings YAML file (default configs/pipeline.yaml; empty: no file)",
    "ALIGNLOOP_LLM_API_KEY": "the LLM judge's API key (llm.api_key_env in the judges config)",
    "ALIGNLOOP_LLM_BASE_URL": "docker-compose: the judge service's --base-url",
    "ALIGNLOOP_LLM_MODEL": "docker-compose: the judge service's --model",
    "ALIGNLOOP_BENCH_DIR": "benchmarks: where result files are written (default bench/results)",
    "ALIGNLOOP_TEST_BOOTSTRAP": "tests: run the integration tests against this cluster",
    "ALIGNLOOP_SYNTH_API_KEY": "the synthetic-data endpoint's API key (endpoint.api_key_env in configs/synth.yaml)",
    "ALIGNLOOP_WEBHOOK_SECRET": "webhooks: the Standard Webhooks secret of targets that name no secret_env",
    "ALIGNLOOP_REPLAY_PROFILE": "replay: a folder each replay process writes its cProfile stats into (profiling)",
    "ALIGNLOOP_BENCH_UI_DB": "bench ui: the labeling database its server process serves (set by the bench itself)",
}
# Used only when no key is configured; `alignloop worker` warns about it. Never use it in production.
DEV_PII_KEY = "alignloop-dev-key-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALIGNLOOP_", extra="forbid", validate_default=True)

    home: Path = Field(Path(".alignloop"), description="Local state: broker data, lake, worker state.")

    # --- Kafka client (any cluster) ---
    kafka_bootstrap: str = Field("localhost:9092", description="Comma-separated host:port list.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: FilePath | None = None
    kafka_ssl_certfile: FilePath | None = None
    kafka_ssl_keyfile: FilePath | None = None
    topic_prefix: str = Field("", description="Prefix for every topic name, to share a cluster.")
    partitions: int = Field(4, ge=1, le=1024, description="Partitions for topics created by `topics create`.")
    replication_factor: int = Field(1, ge=1)

    # --- local broker (alignloop broker start) ---
    broker_port: int = Field(9092, ge=1, le=65535)
    broker_controller_port: int = Field(9093, ge=1, le=65535)
    broker_heap: str = Field("768m", pattern=r"^\d+[mMgG]$")

    # --- worker ---
    app_id: str = Field("alignloop", pattern=r"^[A-Za-z0-9._-]+$", description="Faust app id = consumer group.")
    max_record_bytes: int = Field(1_000_000, ge=1024, description="Larger records go to the DLQ as too_large.")
    sink_batch_size: int = Field(2000, ge=1, description="Events per batch; one Delta commit per batch.")
    sink_flush_interval_s: float = Field(1.0, gt=0, description="Longest a record waits in a batch.")
    checkpoint_every: int = Field(50, ge=1, description="Write a Delta checkpoint every N commits.")
    metrics_port: int = Field(9108, ge=0, le=65535, description="Prometheus /metrics port; 0 disables.")
    pii_hmac_key: SecretStr = Field(SecretStr(DEV_PII_KEY), description="Tenant key for pseudonyms.")
    policy_path: Path = Field(Path("configs/policy.yaml"))
    # per-record bounds of the spine: a record over one goes to the DLQ, never stalls or stops the worker
    max_event_bytes: int = Field(1_000_000, ge=1024, description=(
        "Judged events larger than this go to the DLQ as output_too_large (keep it under the broker's and "
        "traces.judged's max.message.bytes)."))
    max_tool_calls: int = Field(1000, ge=0, description="Traces with more tool calls go to the DLQ as over_limit.")
    max_context_items: int = Field(1000, ge=0, description="Traces with more context items: DLQ as over_limit.")
    stage_budget_s: float = Field(2.0, gt=0, description=(
        "Longest one record may take in one stage (validate, scrub, judge); over it: DLQ as over_budget."))

    # --- area configs: unset = the default file if present, else defaults; a named file must exist ---
    judges_config: Path | None = Field(None, description="Judges config; unset: configs/judges.yaml.")
    scrub_config: Path | None = Field(None, description="Scrub config; unset: configs/scrub.yaml.")
    drift_config: Path | None = Field(None, description="Drift config; unset: configs/drift.yaml.")
    rollout_config: Path | None = Field(None, description="Rollout controller config; unset: configs/rollout.yaml.")

    # --- lake ---
    lake_root: str = Field("", description="Local path or object-store URI; default <home>/lake.")
    lake_storage_options: dict[str, str] = Field(default_factory=dict, description="deltalake storage_options.")
    # --- erasure (issue 17) ---
    erasure_key: SecretStr | None = Field(None, description=(
        "Key of the pseudonymous erasure key (conv_key = HMAC-SHA256(key, conversation_id)) on every row; unset: "
        "generated once into <home>/erasure.key (mode 0600). Set it when writers run on several hosts."))

    # --- labeling UI (issue 16) ---
    ui_db_url: str = Field("", description="SQLAlchemy URL of the labeling DB; default sqlite:///<home>/ui/labeling.db"
                                           " (postgresql+psycopg://user:pw@host/db for a team).")
    ui_secret_key: SecretStr | None = Field(None, description="Signs UI session cookies; unset: a random key kept in "
                                                               "<home>/ui/secret (0600).")
    ui_session_ttl_s: int = Field(8 * 3600, ge=60, description="A UI login expires after this many seconds.")
    ui_port: int = Field(8700, ge=1, le=65535, description="`alignloop ui` listens here.")
    labeling_config: Path | None = Field(None, description="Labeling queues; unset: configs/labeling.yaml.")

    # --- exports (alignloop export) ---
    export_min_alpha: float = Field(0.667, ge=-1.0, le=1.0, description=(
        "Agreement gate: exports holding human labels are refused when the recorded Krippendorff alpha (Delta "
        "table `agreement`) is below this."))

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, v: str) -> str:
        hosts = [h.strip() for h in v.split(",") if h.strip()]
        if not hosts or any(":" not in h or not h.rsplit(":", 1)[1].isdigit() for h in hosts):
            raise ValueError("expected host:port[,host:port...], e.g. localhost:9092")
        return ",".join(hosts)

    @property
    def lake(self) -> str:
        return self.lake_root or str(self.home / "lake")

    def table_uri(self, name: str) -> str:
        root = self.lake.rstrip("/")
        return f"{root}/{name}"

    def topic(self, name: str) -> str:
        from schemas.topics import topic_name

        return topic_name(name, self.topic_prefix)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = settings_file()
        if path is not None:
            data = read_yaml(path, "settings file", f"fix the file or {CONFIG_ENV}")
            sources.append(InitSettingsSource(settings_cls, init_kwargs=data))
        return tuple(sources)


class ConfigError(ValueError):
    """A bad setting, phrased as one line naming the fix."""


M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path, what: str, fix: str) -> dict[str, Any]:
    """The mapping in a YAML config file, or a one-line ConfigError naming the file and the fix."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {str(exc).splitlines()[0]}; {fix}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must be a mapping of settings; {fix}")
    return data


def validate_config(model: type[M], data: dict[str, Any], path: Path, what: str, fix: str) -> M:
    """``model`` from ``data``, or a one-line ConfigError naming the bad field, the file and the fix."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "<root>"
        raise ConfigError(f"bad {what} field {loc!r} in {path}: {err['msg']}; {fix}") from None


def load_yaml_config(model: type[M], path: Path, what: str, fix: str) -> M:
    return validate_config(model, read_yaml(path, what, fix), path, what, fix)


def settings_file() -> Path | None:
    """The settings YAML: $ALIGNLOOP_CONFIG (must exist; empty means none) or configs/pipeline.yaml if present."""
    named = os.environ.get(CONFIG_ENV)
    if named is None:
        return Path(DEFAULT_CONFIG) if Path(DEFAULT_CONFIG).is_file() else None
    if not named:
        return None
    if not Path(named).is_file():
        raise ConfigError(f"settings file {named} not found; fix {CONFIG_ENV} (or set it empty for no file)")
    return Path(named)


def known_env() -> set[str]:
    """Every ALIGNLOOP_* variable the code reads: one per Settings field, plus OTHER_ENV."""
    return {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields} | set(OTHER_ENV)


def check_env(env: Mapping[str, str]) -> None:
    """A ConfigError naming the closest known variable for the first unknown ALIGNLOOP_* name (a typo would
    otherwise be ignored silently)."""
    known = known_env()
    for name in sorted(env):
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in known:
            close = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else "the known names are in schemas/settings.py"
            raise ConfigError(f"unknown environment variable {name}; {hint} (or unset it)")


def load_settings(**overrides: Any) -> Settings:
    """The process's settings; every problem is a one-line ConfigError naming what to fix."""
    check_env(os.environ)
    where = os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    try:
        return Settings(**overrides)
    except SettingsError as exc:  # a complex field (a dict) whose variable is not JSON
        m = re.search(r'field "(\w+)"', str(exc))
        field = m.group(1) if m else "settings"
        raise ConfigError(f"{ENV_PREFIX}{field.upper()} is not valid JSON; set it to a JSON object such as "
                          f'{{"key": "value"}}') from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        env = f"{ENV_PREFIX}{field.upper()}"
        raise ConfigError(
            f"bad setting {field!r}: {err['msg']} (got {err.get('input')!r}); fix {env} or {where}"
        ) from None


def settings_env(s: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with ``s`` written over it as ALIGNLOOP_* variables (secrets included), so a subprocess given this
    environment loads exactly these settings. Other variables pass through; ALIGNLOOP_CONFIG is set empty because
    the file's values are already written out."""
    env = dict(base)
    for name, value in s.model_dump(mode="json").items():
        key = f"{ENV_PREFIX}{name.upper()}"
        secret = getattr(s, name)
        if hasattr(secret, "get_secret_value"):
            value = secret.get_secret_value()
        if value is None:
            env.pop(key, None)
            continue
        env[key] = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    env[CONFIG_ENV] = ""
    return env
