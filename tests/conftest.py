from __future__ import annotations

from pathlib import Path

import pytest

from gslb.core.snapshot import Snapshot
from tests.helpers import CORE_ZONE, PARENT_ZONE, snapshot_of, write_zones


@pytest.fixture
def zones_dir(tmp_path: Path) -> Path:
    return write_zones(tmp_path / "zones", {"gslb.yaml": CORE_ZONE, "parent.yaml": PARENT_ZONE})


@pytest.fixture
def snapshot(zones_dir: Path) -> Snapshot:
    return snapshot_of(zones_dir, nsid=b"test-node")
