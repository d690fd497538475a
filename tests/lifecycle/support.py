"""Configuration files for the reload tests (real files: a reload re-reads them)."""

from __future__ import annotations

from pathlib import Path

CAMPAIGN = """
[campaigns.{cid}]
professional = "demo-pro"
product_category = "telecom"
sector = "telecom"
automated = true
caller_id = "+33162000001"
jurisdiction = "FR"
"""


def gateway_toml(
    tmp_path: Path,
    *campaigns: str,
    agi: str = "127.0.0.1:0",
    http: str = "127.0.0.1:0",
    extra: str = "",
) -> str:
    """A memory-store configuration with the demo data and the given campaigns."""
    text = f"""
[agi]
listen = "{agi}"

[http]
listen = "{http}"

[audit]
sink = "jsonl"
path = "{tmp_path / 'audit.jsonl'}"

[logging]
format = "json"
"""
    return text + extra + "".join(CAMPAIGN.format(cid=c) for c in campaigns)


def write(path: Path, text: str) -> None:
    """Replace the file as an editor or a config manager does (rename over it)."""
    tmp = path.with_suffix(".new")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
