from datetime import timedelta

import pytest

from cityops.errors import ConfigError
from cityops.settings import load_settings, redact_url


def test_reads_cityops_variables_with_nested_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYOPS_DATABASE_URL", "postgresql://app:s3cret@db.example:5432/city")
    monkeypatch.setenv("CITYOPS_STORAGE__TIMESCALE", "require")
    monkeypatch.setenv("CITYOPS_STORAGE__COMPRESS_AFTER", "P3D")
    monkeypatch.setenv("CITYOPS_API__PORT", "8080")
    settings = load_settings()
    assert settings.resolved_database_url() == "postgresql://app:s3cret@db.example:5432/city"
    assert settings.storage.timescale == "require"
    assert settings.storage.compress_after == timedelta(days=3)
    assert settings.api.port == 8080
    assert not settings.uses_embedded_database


def test_unset_or_blank_urls_mean_the_embedded_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CITYOPS_DATABASE_URL", raising=False)
    monkeypatch.setenv("CITYOPS_MQTT_URL", "  ")
    monkeypatch.setenv("CITYOPS_EMBEDDED__POSTGRES_PORT", "6000")
    settings = load_settings()
    assert settings.uses_embedded_database and settings.uses_embedded_broker
    assert settings.resolved_database_url() == "postgresql://postgres@127.0.0.1:6000/cityops"
    assert settings.resolved_mqtt_url().startswith("mqtt://127.0.0.1:")


def test_reads_a_dotenv_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CITYOPS_MQTT_URL", raising=False)
    (tmp_path / ".env").write_text("CITYOPS_MQTT_URL=mqtt://ingest:pw@broker:1883\n")
    assert load_settings().resolved_mqtt_url() == "mqtt://ingest:pw@broker:1883"


def test_a_wrong_scheme_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYOPS_DATABASE_URL", "mysql://root@localhost/db")
    with pytest.raises(ConfigError, match="CITYOPS_DATABASE_URL") as caught:
        load_settings()
    assert "postgresql://" in str(caught.value)


def test_an_out_of_range_port_names_the_nested_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYOPS_API__PORT", "70000")
    with pytest.raises(ConfigError, match="CITYOPS_API__PORT"):
        load_settings()


def test_secrets_never_show_in_repr_or_redacted_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYOPS_DATABASE_URL", "postgresql://app:s3cret@db:5432/city")
    monkeypatch.setenv("CITYOPS_MQTT_URL", "mqtt://dev:hunter2@broker:1883")
    settings = load_settings()
    assert "s3cret" not in repr(settings) and "hunter2" not in repr(settings)
    assert "s3cret" not in str(settings.model_dump())
    assert redact_url(settings.resolved_database_url()) == "postgresql://app:***@db:5432/city"
    assert redact_url("mqtt://broker:1883") == "mqtt://broker:1883"
    # libpq's several hosts (deploy/postgres-ha): the password goes, the hosts stay as written
    assert redact_url("postgresql://app:s3cret@db1:5432,db2:5432/city?target_session_attrs=read-write") == \
        "postgresql://app:***@db1:5432,db2:5432/city?target_session_attrs=read-write"
