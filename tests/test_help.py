"""What `--help` teaches and where the documentation lives: the top-level help without
TensorFlow, every command's description and examples (each parsed by the real parser), every
flag's help saying what it does in one style, the guides of `cnnkeras docs`, and every link of
the READMEs and guides pointing at a file that exists."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cnnkeras._help import TOP
from cnnkeras.cli import COMMAND_HELP, COMMANDS, build_parser, main
from cnnkeras.demos import DEMOS

ROOT = Path(__file__).parent.parent


def _help_text(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit:
        main([*argv, "--help"])
    assert exit.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command_without_importing_tensorflow():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cnnkeras", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert not imported & {"tensorflow", "keras", "jax", "numpy"}
    assert len(imported) > 20  # the import log was read
    listed = re.findall(r"^    (\S+)  ", proc.stdout, re.MULTILINE)
    assert listed == [key[0] for key in COMMANDS if len(key) == 1]
    assert "examples:" in proc.stdout and "`cnnkeras docs` lists" in " ".join(proc.stdout.split())


def _examples(help) -> list[list[str]]:
    return [shlex.split(example, comments=True) for example in help.examples]


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_each_command_describes_itself_and_its_examples_parse(path, capsys):
    text = _help_text(list(path), capsys)
    help = COMMAND_HELP[path]
    assert " ".join(help.description.split()[:6]) in " ".join(text.split())
    if COMMANDS[path][0] is None:  # a group lists its commands
        for key in COMMANDS:
            if len(key) == len(path) + 1 and key[: len(path)] == path:
                assert re.search(rf"^    {key[-1]}\b", text, re.MULTILINE), key
        return
    assert 3 <= len(help.examples) <= 5, path
    assert "examples:" in text
    parser = build_parser()
    for example in _examples(help):
        assert example[0] == "cnnkeras" and tuple(example[1 : 1 + len(path)]) == path
        args = parser.parse_args(example[1:])  # a stale flag exits here
        assert args.func is COMMANDS[path][0]
        assert example[-1] in text or " ".join(example[1:]) in " ".join(text.split())


def test_the_top_level_examples_parse():
    parser = build_parser()
    for example in _examples(TOP):
        assert parser.parse_args(example[1:]).func is COMMANDS[(example[1],)][0]
    assert {path for path in COMMAND_HELP if path[0] == "demo"} == {
        ("demo",),
        *(("demo", name) for name in DEMOS),
    }  # the help of every demo, and only of demos


def _leaf_parsers(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _leaf_parsers(sub, (*prefix, name))
            return
    yield prefix, parser


def test_every_flag_says_what_it_does_in_one_style():
    checked = 0
    for path, parser in _leaf_parsers(build_parser()):
        grouped = {id(a): g.title for g in parser._action_groups for a in g._group_actions}
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = (path, action.dest)
            words = action.dest.replace("_", " ")
            help = action.help or ""
            assert help and help.lower().strip(". ") not in (words, f"no {words}"), where
            assert len(re.findall(r"\bdefault\b", help)) == help.count("(default: "), where
            assert help.count("(default: ") <= 1, where
            if action.option_strings and len(parser._actions) > 10:  # many flags: grouped
                assert grouped[id(action)] not in ("options", "optional arguments"), where
            checked += 1
    assert checked > 150


def test_help_never_breaks_a_word(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    text = _help_text(["train"], capsys)
    wrapped = [line for line in text.splitlines() if line.startswith(" " * 32)]
    assert len(wrapped) > 30 and all(len(line) <= 60 or " " not in line.strip() for line in wrapped)
    assert "flip,rotation,zoom,translation,randaugment,mixup,cutmix;" in text
    assert re.search(r"\(default:\s+auto\)", text)


def test_docs_lists_the_guides_and_prints_one(capsys):
    assert main(["docs"]) == 0
    listing = capsys.readouterr().out
    guides = sorted(p.stem for p in (ROOT / "cnnkeras" / "docs").glob("*.md"))
    assert len(guides) >= 5
    assert re.findall(r"^  (\S+)", listing, re.MULTILINE) == guides
    assert main(["docs", "photos"]) == 0
    assert capsys.readouterr().out == (ROOT / "cnnkeras/docs/photos.md").read_text() + "\n"
    assert main(["docs", "photo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no guide 'photo'; the guides are " in err


def _documents() -> list[Path]:
    folders = ("cnnkeras", "saved_models", "tflite", "tuning", "tests")
    readmes = [
        ROOT / "README.md",
        ROOT / "BENCHMARKS.md",
        *(ROOT / f / "README.md" for f in folders),
    ]
    return [*readmes, *sorted((ROOT / "cnnkeras" / "docs").glob("*.md"))]


def test_every_link_of_the_documentation_points_at_a_file():
    links = 0
    for document in _documents():
        text = document.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "#")):
                continue
            path = (document.parent / target.split("#")[0]).resolve()
            assert path.exists(), f"{document.relative_to(ROOT)}: {target}"
            links += 1
    assert links >= 30
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 260  # a newcomer's five minutes
    for document in _documents()[2:]:  # every other document is one click from the README
        assert str(document.relative_to(ROOT)) in readme, document
