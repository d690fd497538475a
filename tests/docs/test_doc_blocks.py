"""Every fenced block of the documentation is classified, and run verbatim when it can be
(tests/docs/blocks.py says how). The dialplan blocks run in tests/e2e/test_doc_dialplans.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.blocks import Block, all_blocks, blocks, commands, problems, unmatched
from tests.docs.sandbox import FILES, Sandbox

TOML_ASSIGNMENT = re.compile(r"^\s*[A-Za-z0-9_.\"-]+\s*=")


def test_every_block_is_classified() -> None:
    found = all_blocks()
    assert len(found) > 20  # the extractor sees the docs at all
    drift = [p for block in found for p in problems(block)]
    assert not drift, "\n".join(drift)


def test_the_extractor_reports_an_unclassified_block_with_its_line(tmp_path: Path) -> None:
    from tests.docs.blocks import blocks_of

    doc = tmp_path / "x.md"
    doc.write_text("# t\n\n<!-- doc-test: skip a diagram, not a command -->\n```\na\n```\n\n"
                   "```sh\nls\n```\n")
    first, second = blocks_of(doc)
    assert (first.kind, first.line, second.kind, second.line) == ("skip", 4, None, 8)


def config_check(path: Path, sandbox: Sandbox) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "--config", str(path),
                           "config", "check"], capture_output=True, text=True,
                          env=sandbox.env, cwd=sandbox.work, timeout=60, check=False)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path)
    try:
        yield box
    finally:
        box.close()


@pytest.mark.parametrize("block", blocks("toml"), ids=str)
def test_toml_block_passes_config_check(block: Block, sandbox: Sandbox, tmp_path: Path) -> None:
    section = block.options.get("fragment", "")
    if "each-line" in block.options:
        pieces = [ln for ln in block.text.splitlines() if TOML_ASSIGNMENT.match(ln)]
        assert pieces, f"{block.where}: each-line, but no assignment line"
    else:
        pieces = [block.text]
    for n, piece in enumerate(pieces):
        path = tmp_path / f"block{n}.toml"
        path.write_text((f"[{section}]\n" if section else "") + sandbox.relocate(piece))
        done = config_check(path, sandbox)
        assert done.returncode == 0, (
            f"{block.where}: `config check` exit {done.returncode} for:\n{piece}\n{done.stderr}")


@pytest.mark.parametrize("block", blocks("file"), ids=str)
def test_sample_file_block_is_the_file_the_examples_use(block: Block) -> None:
    (name,) = block.options
    path = FILES / name
    assert path.is_file(), f"{block.where}: no tests/docs/files/{name}"
    assert block.text == path.read_text(encoding="utf-8"), (
        f"{block.where}: the sample differs from tests/docs/files/{name}")


@pytest.mark.parametrize("block", blocks("shell"), ids=str)
def test_shell_block_runs_verbatim(block: Block, tmp_path: Path) -> None:
    box = Sandbox(tmp_path, redis="redis" in block.options,
                  files=block.options.get("files", ""), trail=block.options.get("trail"))
    try:
        cmds = commands(block)
        assert cmds, f"{block.where}: a shell block without commands"
        for n, cmd in enumerate(cmds):
            result = box.run(cmd.text)
            want = int(block.options.get("exit", "0")) if n == len(cmds) - 1 else 0
            assert result.code == want, (
                f"{block.path.name}:{cmd.line}: `{cmd.text}` exited {result.code}, "
                f"expected {want}:\n{result.output}")
            missing = unmatched(cmd.shown, result.output)
            assert missing is None, (
                f"{block.path.name}:{cmd.line}: the shown line {missing!r} is not in the "
                f"output of `{cmd.text}`:\n{result.output}")
    finally:
        box.close()
