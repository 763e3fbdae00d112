"""DNSSEC keys kept in files (gslb.state.keyfiles, `dnssec: {keys: NAME}`): keys made by
openssl and by `gslb dnssec keygen` sign, and a directory that is not safe to use is refused
whole, naming the file and the reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dns.dnssec
import dns.rrset
import pytest

from gslb import zonefiles
from gslb.core.dnssec import Signer, SigningKey
from gslb.core.records import A, RRset
from gslb.state.keyfiles import MAX_KEY_FILES, KeyDirError, read_key_dir, write_key_file
from tests.test_dnssec_core import APEX, WIRE, as_dnspython, owner

OPENSSL = shutil.which("openssl")


def openssl_key(path: Path, *argv: str) -> Path:
    assert OPENSSL is not None, "openssl is part of Debian's base system"
    subprocess.run([OPENSSL, *argv, "-out", str(path)], check=True, capture_output=True)
    path.chmod(0o600)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "keys" / "zone").mkdir(parents=True)
    return tmp_path / "keys"


def signs(key: SigningKey) -> None:
    """`key` signs an RRset that dnspython validates against the key's DNSKEY."""
    signer = Signer(WIRE, (key,), int(time.time()))
    rrset = RRset(owner("www"), A, 20, ((bytes([192, 0, 2, 1]),),))
    dns.dnssec.validate(
        as_dnspython(rrset), as_dnspython(signer.rrsig(rrset)), {APEX: as_dnspython(signer.dnskey)}
    )


@pytest.mark.parametrize(
    ("argv", "algorithm"),
    [
        (("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"), 13),
        (("genpkey", "-algorithm", "ED25519"), 15),
        (("ecparam", "-name", "prime256v1", "-genkey", "-noout"), 13),  # the older "EC" form
    ],
)
def test_keys_made_by_openssl_sign(root: Path, argv: tuple[str, ...], algorithm: int) -> None:
    openssl_key(root / "zone" / "k.pem", *argv)
    name = "ECDSAP256SHA256" if algorithm == 13 else "ED25519"
    (key,) = read_key_dir(root, "zone", name)
    assert key.algorithm == algorithm
    signs(key)


def test_keygen_writes_a_private_file_and_prints_its_ds(root: Path) -> None:
    path = root / "zone" / "k.pem"
    done = subprocess.run(
        [sys.executable, "-m", "gslb", "dnssec", "keygen", "signed.example", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    (key,) = read_key_dir(root, "zone", "ECDSAP256SHA256")
    signs(key)
    dnskey = as_dnspython(Signer(WIRE, (key,), 0).dnskey)[0]
    ds = dns.rrset.from_text(APEX, 3600, "IN", "DS", done.stdout.split(" DS ", 1)[1])
    assert ds[0] == dns.dnssec.make_ds(APEX, dnskey, "SHA256")
    again = subprocess.run(
        [sys.executable, "-m", "gslb", "dnssec", "keygen", "signed.example", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert again.returncode == 1 and "File exists" in again.stderr, "a key file is never replaced"
    assert read_key_dir(root, "zone", "ECDSAP256SHA256") == (key,)


def test_keys_sign_oldest_first(root: Path) -> None:
    first, second = SigningKey.generate("ED25519"), SigningKey.generate("ED25519")
    write_key_file(root / "zone" / "zz-old.pem", first)
    write_key_file(root / "zone" / "aa-new.pem", second)
    os.utime(root / "zone" / "zz-old.pem", (1_000_000, 1_000_000))
    keys = read_key_dir(root, "zone", "ED25519")
    assert [k.private for k in keys] == [first.private, second.private]
    assert keys[0].created == 1_000_000


def refused(root: Path, name: str = "zone", algorithm: str = "ECDSAP256SHA256") -> str:
    with pytest.raises(KeyDirError) as e:
        read_key_dir(root, name, algorithm)
    return str(e.value)


def test_what_is_refused_and_why(root: Path, tmp_path: Path) -> None:
    zone = root / "zone"
    assert "holds no key" in refused(root)
    assert "no such directory" in refused(root, "other")
    write_key_file(zone / "a.pem", SigningKey.generate("ECDSAP256SHA256"))
    assert "not an ED25519 key" in refused(root, algorithm="ED25519")
    (zone / "a.pem").chmod(0o644)
    assert "a.pem: readable or writable by others (mode 644)" in refused(root)
    (zone / "a.pem").chmod(0o600)
    (zone / "b.pem").write_bytes(b"not a key")
    (zone / "b.pem").chmod(0o600)
    assert "b.pem: not a PEM private key" in refused(root)
    openssl_key(zone / "b.pem", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024")
    assert "b.pem: neither an EC P-256 nor an Ed25519 key" in refused(root)
    (zone / "b.pem").unlink()
    outside = tmp_path / "elsewhere.pem"
    write_key_file(outside, SigningKey.generate("ECDSAP256SHA256"))
    (zone / "c.pem").symlink_to(outside)
    assert "c.pem: leads outside the key directory" in refused(root)
    (zone / "c.pem").unlink()
    (root / "link").symlink_to(tmp_path)
    assert "leads outside the key directory" in refused(root, "link")
    for i in range(MAX_KEY_FILES):
        write_key_file(zone / f"k{i}.pem", SigningKey.generate("ECDSAP256SHA256"))
    assert f"more than {MAX_KEY_FILES}" in refused(root)


@pytest.mark.parametrize("name", ["../etc", "/etc/ssl", "a/b", ".hidden", "", "x" * 65])
def test_a_zone_document_names_its_key_directory_never_a_path(tmp_path: Path, name: str) -> None:
    path = tmp_path / "signed.example.yaml"
    text = (
        "zone: signed.example\nsoa: {mname: ns1, rname: h.example.com.}\n"
        "dnssec:\n  keys: '%s'\nrecords: |\n  @ NS ns1\n  ns1 A 192.0.2.53\n"
    )
    path.write_text(text % name)
    with pytest.raises(zonefiles.ZoneFileError) as e:
        zonefiles.load_file(path, {})
    assert f"{path}:4:" in str(e.value) and "dnssec.keys" in str(e.value), str(e.value)
    path.write_text(text % "signed.example-2026")
    assert zonefiles.load_file(path, {}).doc.dnssec.keys == "signed.example-2026"
