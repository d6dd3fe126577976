import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXAMPLE_STACKS = sorted(ROOT.glob("Pulumi.*.yaml"))
EXAMPLE_STACKS = [p for p in EXAMPLE_STACKS if p.name != "Pulumi.yaml"]


@pytest.fixture(params=EXAMPLE_STACKS, ids=lambda p: p.name)
def example_stack(request: pytest.FixtureRequest) -> Path:
    return Path(request.param)
