"""Configuration is loaded once per process, in the composition root, and passed down: the worker's pipeline
and hooks use the configs they are given and read no file (nor the environment) again."""
from __future__ import annotations

from pathlib import Path

import pytest

from alignloop.configs import load_configs
from schemas.settings import ConfigError, Settings

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path) -> Settings:
    (tmp_path / "judges.yaml").write_text("escalation: {enabled: false}\n")
    (tmp_path / "drift.yaml").write_text("enabled: false\n")
    (tmp_path / "scrub.yaml").write_text("tier: structured\n")
    return Settings(home=tmp_path / "home", lake_root=str(tmp_path / "lake"), metrics_port=0,
                    policy_path=REPO / "configs" / "policy.yaml", judges_config=tmp_path / "judges.yaml",
                    drift_config=tmp_path / "drift.yaml", scrub_config=tmp_path / "scrub.yaml")


def test_the_worker_runs_on_the_configs_it_was_given(tmp_path: Path) -> None:
    from streams.app import create_app
    from streams.curation.sink import CurationHook
    from streams.scrub import RegexScrubber

    settings = _settings(tmp_path)
    configs = load_configs(settings)
    assert not configs.judges.escalation.enabled and not configs.drift.enabled and configs.scrub.tier == "structured"
    for name in ("judges.yaml", "drift.yaml", "scrub.yaml"):
        (tmp_path / name).unlink()  # a second read of a named, now missing file would raise ConfigError
    _, handler = create_app(settings, configs, role="all")
    assert type(handler.pipeline.scrubber) is RegexScrubber  # the structured tier from the given scrub config
    assert [type(h) for h in handler.hooks] == [CurationHook]  # drift and escalation off, as given
    with pytest.raises(ConfigError, match="not found"):
        load_configs(settings)


def test_named_config_files_must_exist_unnamed_defaults_may_be_absent(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for field, env in (("judges_config", "ALIGNLOOP_JUDGES_CONFIG"), ("scrub_config", "ALIGNLOOP_SCRUB_CONFIG"),
                       ("drift_config", "ALIGNLOOP_DRIFT_CONFIG")):
        with pytest.raises(ConfigError, match=f"not found; fix {env}"):
            load_configs(Settings(**{field: tmp_path / "missing.yaml"}))
    monkeypatch.chdir(tmp_path)  # no configs/ here: every unnamed default file is absent
    configs = load_configs(Settings(policy_path=REPO / "configs" / "policy.yaml"))
    assert configs.scrub.tier == "full" and configs.drift.enabled and configs.judges.escalation.enabled
