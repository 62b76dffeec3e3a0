"""No module of the package is longer than 450 lines (issue 13: modules that read in one sitting)."""

from pathlib import Path

import vlnav_data

MAX_LINES = 450


def test_no_module_is_longer_than_450_lines():
    root = Path(vlnav_data.__file__).parent
    long = {
        str(p.relative_to(root)): n
        for p in sorted(root.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these along their seams (ARCHITECTURE.md, 'Modules split along their seams'): {long}"
