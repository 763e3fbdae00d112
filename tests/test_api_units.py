"""The API's pure parts: token configuration, merge patches, the normal form of documents."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from gslb import zonefiles
from gslb.api import auth, documents

ROOT = Path(__file__).resolve().parent.parent


def test_tokens_from_a_file_and_the_environment(tmp_path: Path) -> None:
    secret = "s3cret-token-for-grafana"
    path = tmp_path / "tokens.yaml"
    path.write_text(
        "- {name: alice, role: write, token: alice-token-0123456789}\n"
        f"- {{name: grafana, role: read, sha256: {hashlib.sha256(secret.encode()).hexdigest()}}}\n"
    )
    tokens = auth.load(path, {"GSLB_API_TOKENS": "ci:write:ci-token-0123456789abc"})
    assert len(tokens) == 3
    assert tokens.identify("alice-token-0123456789") == auth.Principal("alice", "write")
    grafana = tokens.identify(secret)
    assert grafana == auth.Principal("grafana", "read")
    assert grafana.may("read") and not grafana.may("write")
    assert tokens.identify("ci-token-0123456789abc") == auth.Principal("ci", "write")
    assert tokens.identify("alice-token-012345678") is None
    assert tokens.identify("") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {name: a, role: admin, token: 0123456789abcdef}", "[0].role: read or write"),
        ("- {name: a, role: read, token: short}", "[0].token: a secret of at least 16"),
        ("- {role: read, token: 0123456789abcdef}", "[0].name: required"),
        ("- {name: a, role: read, sha256: abc}", "[0].sha256: 64 hex digits"),
        ("{a: 1}", "a list of tokens"),
        ("- [", "tokens.yaml"),
    ],
)
def test_a_bad_token_file_is_refused_with_the_place(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    with pytest.raises(auth.TokenConfigError, match=r".*" + message.replace("[", r"\[")):
        auth.load(path, {})


def test_a_bad_token_in_the_environment_is_refused() -> None:
    with pytest.raises(auth.TokenConfigError, match=r"GSLB_API_TOKENS\[0\].role"):
        auth.load(None, {"GSLB_API_TOKENS": "ci:boss:0123456789abcdef0"})


def test_the_local_token_is_private_and_kept(tmp_path: Path) -> None:
    token, path = auth.local_token(tmp_path / "data")
    assert len(token) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert auth.local_token(tmp_path / "data") == (token, path)
    tokens = auth.with_local(auth.Tokens([]), token)
    assert tokens.identify(token) == auth.Principal(auth.LOCAL_NAME, "write")


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # the examples of RFC 7396, appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7396(target: object, patch: object, result: object) -> None:
    assert documents.merge_patch(target, patch) == result


def test_a_zone_file_exports_to_itself(tmp_path: Path) -> None:
    """file -> stored document -> YAML -> file gives the same document, in file order."""
    loaded = zonefiles.load_file(ROOT / "zones" / "gslb.example.com.yaml", {})
    text = documents.to_yaml(loaded.document)
    assert list(loaded.document)[:4] == ["zone", "soa", "records", "isps"]
    assert text.startswith("zone: gslb.example.com\n")
    assert "records: |\n" in text
    (tmp_path / "again.yaml").write_text(text)
    again = zonefiles.load_file(tmp_path / "again.yaml", {})
    assert again.document == loaded.document
    assert again.digest == loaded.digest
