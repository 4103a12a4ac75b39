"""Settings of the reference implementation (environment variables ``EQLAB_*`` or arguments)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from reference_impl.vault import MasterKey

MIB = 1024 * 1024


def default_db_url() -> str:
    return f"sqlite:///{Path(user_data_dir('eqlab')) / 'reference.sqlite3'}"


def default_master_key_file() -> Path:
    return Path(user_data_dir("eqlab")) / "master.key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EQLAB_", frozen=True)

    db_url: str = Field(default_factory=default_db_url, description="sqlite:///FILE or postgresql://HOST/DB[?schema=S]")
    seed: Literal["demo", "none"] = "none"
    max_body_bytes: int = 10 * MIB
    max_json_depth: int = 64
    default_page_size: int = 50
    max_page_size: int = 1000
    max_transaction_entries: int = Field(
        1000, ge=1, description="entries of one transaction Bundle (it holds the store's writer while it runs)"
    )
    max_statement_seconds: float = Field(
        30.0, gt=0, description="a request's database statement is cancelled past this, answered 503 (store.database)"
    )
    faults: frozenset[str] = Field(default_factory=frozenset, description="deliberate defects (faults.py)")
    services: frozenset[str] | None = Field(None, description="the national services to run (default: all)")
    master_key: SecretStr | None = Field(None, description="base64 of 32 bytes; default: master_key_file")
    master_key_file: Path = Field(default_factory=default_master_key_file)
    access_token_seconds: int = Field(3600, ge=30, le=86400)
    refresh_token_seconds: int = Field(30 * 86400, ge=60)
    key_rotation_hours: float = Field(24.0, gt=0, description="token-signing keys are replaced this often")

    def master(self) -> MasterKey:
        if self.master_key is not None:
            return MasterKey.from_text(self.master_key.get_secret_value())
        return MasterKey.from_file(self.master_key_file)
