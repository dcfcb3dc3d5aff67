from __future__ import annotations

from shared.core.redaction import redact_secrets, strip_query


def test_strip_query_removes_sas() -> None:
    url = "https://acct.blob.core.windows.net/vhds/a.vhd?sv=2024-01-01&sig=SECRET%3D"
    assert strip_query(url) == "https://acct.blob.core.windows.net/vhds/a.vhd"


def test_strip_query_keeps_path_style_endpoints() -> None:
    url = "http://127.0.0.1:10000/devstoreaccount1/vhds/a.vhd?sig=x"
    assert strip_query(url) == "http://127.0.0.1:10000/devstoreaccount1/vhds/a.vhd"


def test_redact_secrets_masks_keys() -> None:
    text = "Endpoint=sb://x;SharedAccessKeyName=k;SharedAccessKey=abc123;"
    assert "abc123" not in redact_secrets(text)
    assert "SharedAccessKey=***" in redact_secrets(text)
