"""Fenced blocks of the documentation, and how each one is run.

Every fenced block of README.md, docs/*.md and deploy/redis/README.md must be preceded
(on the line right before the fence, or with blank lines between) by an HTML comment
saying what the tests do with it:

    <!-- doc-test: shell -->                 run verbatim (embedded default, memory store)
    <!-- doc-test: shell redis -->           run verbatim against a test redis-server
    <!-- doc-test: shell redis exit=2 -->    ... the last command must exit 2
    <!-- doc-test: shell files=NAME -->      tests/docs/files/NAME/* over the usual files
    <!-- doc-test: shell trail -->           an audit trail written first (trail=rotated:
                                             three files, as logrotate leaves them)
    <!-- doc-test: toml -->                  a whole configuration: `config check` exit 0
    <!-- doc-test: toml fragment=store -->   lines of one table: put under [store]
    <!-- doc-test: toml fragment=store each-line -->   each assignment on its own
    <!-- doc-test: dialplan -->              loaded into the real Asterisk of tests/e2e,
                                             an allowed call held past 30 s
    <!-- doc-test: dialplan fragment -->     priorities without a context: loaded in one
    <!-- doc-test: manager -->               the manager.conf of a real Asterisk: every
                                             account in it logs in with its secret
    <!-- doc-test: file NAME -->             a sample file: must equal tests/docs/files/NAME
                                             (which the shell examples import)
    <!-- doc-test: skip REASON -->           not run; the reason is required

Shell blocks: a block with ``$ `` prompts runs each prompted command and checks that the
lines shown under it appear in its output, in order (``…`` or ``...`` in a shown line
matches any text; other lines of the real output may come between). A block without
prompts runs each line as a command (``# comments`` are fine). Paths under
/etc/dialer-gateway, /var/lib/dialer-gateway and /opt/dialer-gateway are relocated into
the sandbox (tests/docs/sandbox.py); nothing else is rewritten.

Adding a block: write the comment, run ``pytest tests/docs``; an unclassified or drifted
block fails with its ``file:line``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             ROOT / "deploy" / "redis" / "README.md")
KINDS = ("shell", "toml", "dialplan", "manager", "file", "skip")
FENCE = re.compile(r"^(```+|~~~+)(.*)$")
MARKER = re.compile(r"^<!--\s*doc-test:\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str  # the fence's info string (```toml -> "toml")
    text: str
    kind: str | None  # None: unclassified
    options: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def __str__(self) -> str:
        return self.where


def _parse_marker(spec: str) -> tuple[str, dict[str, str], str]:
    kind, _, rest = spec.partition(" ")
    if kind == "skip":
        return kind, {}, rest.strip()
    options: dict[str, str] = {}
    for word in rest.split():
        key, _, value = word.partition("=")
        options[key] = value
    return kind, options, ""


def blocks_of(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match.group(1), match.group(2).strip()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        marker = MARKER.match(lines[j]) if j >= 0 else None
        if marker:
            kind, options, reason = _parse_marker(marker.group(1))
            out.append(Block(path, start + 1, info, "\n".join(body) + "\n", kind, options,
                             reason))
        else:
            out.append(Block(path, start + 1, info, "\n".join(body) + "\n", None))
    return out


def all_blocks() -> list[Block]:
    return [b for path in DOC_FILES for b in blocks_of(path)]


def blocks(kind: str) -> list[Block]:
    return [b for b in all_blocks() if b.kind == kind]


def problems(block: Block) -> list[str]:
    """Why a block's classification is not acceptable (empty: fine)."""
    if block.kind is None:
        return [f"{block.where}: unclassified ```{block.info} block: put a "
                f"'<!-- doc-test: KIND -->' comment before it (kinds: {', '.join(KINDS)}; "
                f"see tests/docs/blocks.py)"]
    if block.kind not in KINDS:
        return [f"{block.where}: unknown doc-test kind {block.kind!r} (kinds: {', '.join(KINDS)})"]
    if block.kind == "skip" and len(block.reason) < 10:
        return [f"{block.where}: 'doc-test: skip' needs a reason (why it cannot be run)"]
    return []


# --- shell blocks -------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    line: int  # line in the markdown file
    text: str
    shown: tuple[str, ...]  # the output lines shown under a prompted command


def commands(block: Block) -> list[Command]:
    """The commands of a shell block, continuation lines joined."""
    raw = block.text.splitlines()
    prompted = any(line.startswith("$ ") for line in raw)
    out: list[Command] = []
    k = 0
    while k < len(raw):
        line = raw[k]
        lineno = block.line + 1 + k
        k += 1
        if prompted and not line.startswith("$ "):
            if out:
                cmd = out[-1]
                out[-1] = Command(cmd.line, cmd.text, (*cmd.shown, line))
            continue
        text = line[2:] if prompted else line
        if not prompted and (not text.strip() or text.lstrip().startswith("#")):
            continue
        while text.rstrip().endswith("\\") and k < len(raw):
            text = text.rstrip()[:-1] + " " + raw[k].strip()
            k += 1
        out.append(Command(lineno, text, ()))
    return out


def shown_pattern(line: str) -> re.Pattern[str]:
    """A shown output line as a pattern: ``…``/``...`` match anything, spaces flexible."""
    parts = re.split(r"(…|\.\.\.|\s+)", line.strip())
    regex = "".join(
        ".*" if p in ("…", "...") else r"\s+" if p and p.isspace() else re.escape(p)
        for p in parts
    )
    return re.compile(regex)


def unmatched(shown: tuple[str, ...], actual: str) -> str | None:
    """The first shown line not found (in order) in ``actual``, or None."""
    lines = [ln.strip() for ln in actual.splitlines()]
    pos = 0
    for want in shown:
        if not want.strip():
            continue
        pattern = shown_pattern(want)
        while pos < len(lines) and not pattern.fullmatch(lines[pos]):
            pos += 1
        if pos == len(lines):
            return want
        pos += 1
    return None
