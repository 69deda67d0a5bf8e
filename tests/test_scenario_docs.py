"""docs/scenario-language.md documents every scenario command, and nothing the parser does
not accept: a command added to the parser without a line in the reference fails here."""

from __future__ import annotations

import re
from pathlib import Path

from numasim.mm.script.lang import COMMANDS, parse_script

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scenario-language.md"


def _documented() -> dict[str, str]:
    """{command: its usage cell} from the rows of the Commands table."""
    text = DOC.read_text()
    table = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)([^`]*)` \|", table, flags=re.M)
    return {cmd: cmd + usage for cmd, usage in rows}


def test_every_command_is_documented_and_every_documented_command_exists():
    documented = _documented()
    missing = sorted(set(COMMANDS) - set(documented))
    assert not missing, f"commands without a line in {DOC.name}: {missing}"
    unknown = sorted(set(documented) - set(COMMANDS))
    assert not unknown, f"{DOC.name} documents commands the parser does not know: {unknown}"


def test_documented_usages_parse():
    """The usage in the first column, with its placeholders filled in, is a line the parser
    accepts: the reference cannot drift from the syntax."""
    fill = {"N": "4", "OFF": "0", "ID": "0", "MODE": "interleave", "NODES": "0-1",
            "NODE": "1", "K": "100", "MS": "1", "UID": "65534", "FROM": "0", "TO": "1",
            "PATH": "/tmp/x", "VALUE": "1", "FSTYPE": "tmpfs", "TARGET": "/tmp/t",
            "PATTERN": "Fallback", "ADDR": "+0", "LEN": "4096"}
    for cmd, usage in _documented().items():
        if cmd == "exec":
            continue  # its argument is a sub-script
        words = []
        for w in usage.split():
            if w.startswith("["):
                break  # optional parts may need others; the required part must parse
            words.append(fill.get(w, w).split("\\|")[0])
        parse_script(" ".join(words), "doc")


def test_readme_links_the_reference():
    assert "docs/scenario-language.md" in (ROOT / "README.md").read_text()
