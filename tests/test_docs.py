"""The README and docs/ as a newcomer reads them: short, linked, free of the project's history, and every command
they show with its output prints that output."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from taue_engine.cli import main

REPO = Path(__file__).resolve().parents[1]
USER_DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "krita_plugin" / "README.md",
                  REPO / "gimp_plugin" / "README.md"]
README_LINES = 250


def test_the_readme_is_a_short_path():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_LINES
    for section in ("## Two commands", "## Real SDXL", "## Krita", "## GIMP 3", "## The server", "## From Python",
                    "## The toy model", "## Contributing"):
        assert section in readme, section
    assert "bash run.sh demo" in readme and "bash run.sh test" in readme
    assert 'pytest -m "not slow and not e2e"' in readme


@pytest.mark.parametrize("path", USER_DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_user_documents_hold_no_history(path):
    """Issue numbers, retired models and dated lab entries belong to CHANGELOG.md and lab/notes/, not to the pages
    a user reads."""
    text = path.read_text(encoding="utf-8")
    for pattern in (r"\bissue \d+", r"\btoy [12]\b", r"\btoy1\b", r"\btoy2\b", r"\b\d{1,2} (Dec|Nov) 20\d\d\b",
                    r"\.\./shared"):
        found = re.search(pattern, text, flags=re.IGNORECASE)
        assert found is None, f"{path.name}: {found.group(0)!r}"


@pytest.mark.parametrize("path", USER_DOCUMENTS + [REPO / "CHANGELOG.md"], ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_to_a_file(path):
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"


def shown_commands() -> list[tuple[str, str, str]]:
    """(document, command, what it prints) for every `$ taue ...` line of the user documents with its output."""
    found = []
    for path in USER_DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for command, shown in re.findall(r"\n\$ (taue [^\n]+)\n((?:(?!```)[^\n]*\n)+?)```", text):
            found.append((path.name, command, shown))
    return found


def test_the_documents_show_commands_with_their_output():
    names = {document for document, _, _ in shown_commands()}
    assert {"README.md", "models.md", "testbed.md"} <= names, names


@pytest.mark.parametrize("document, command, shown", shown_commands(), ids=lambda v: v if len(v) < 40 else None)
def test_every_command_shown_prints_what_it_shows(document, command, shown, capsys, tmp_path, monkeypatch):
    """Run in an empty folder (a command that writes writes there), compared word for word."""
    monkeypatch.chdir(tmp_path)
    status = main(shlex.split(command)[1:])
    printed = capsys.readouterr()
    assert (printed.out + printed.err).strip() == shown.strip(), f"{document}: {command}"
    assert status == (2 if "error:" in shown else 0), f"{document}: {command}"


@pytest.mark.e2e
def test_the_server_pages_curl_commands_work_as_shown(pipe, tmp_path):
    """docs/server.md's curl block, against a live server: submit, poll, fetch a layer and the PSD."""
    from tests.helpers.live import live_server

    text = (REPO / "docs" / "server.md").read_text(encoding="utf-8")
    block = text.split("```bash", 2)[2].split("```", 1)[0]
    commands = [line.split("#", 1)[0].rstrip().rstrip("\\") for line in block.splitlines()]
    lines, current = [], ""
    for raw, command in zip(block.splitlines(), commands):  # join the continued lines
        current += " " + command.strip() if current else command.strip()
        if not raw.rstrip().endswith("\\"):
            if current:
                lines.append(current)
            current = ""
    assert [line.split()[0] for line in lines] == ["curl"] * 4, lines
    with live_server(tmp_path / "data", pipe) as live:
        host = live.url.removeprefix("http://")

        def curl(line: str, job_id: str = "") -> str:
            words = shlex.split(line.replace("localhost:7860", host).replace("<ID>", job_id))
            done = subprocess.run(words, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)
            return done.stdout

        job = json.loads(curl(lines[0]))
        assert job["state"] in ("queued", "running") and len(job["id"]) == 32
        live.wait(job["id"], timeout=300)
        assert json.loads(curl(lines[1], job["id"]))["state"] == "succeeded"
        curl(lines[2], job["id"])
        curl(lines[3], job["id"])
    assert (tmp_path / "composite.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "result.psd").read_bytes()[:4] == b"8BPS"


def test_the_readmes_server_commands_are_what_taue_server_takes():
    """Each `.venv/bin/taue-server` line of the README's server section parses, with the values shown."""
    from server.cli import build_parser as server_parser

    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## The server", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.startswith(".venv/bin/taue-")]
    parsed = [server_parser().parse_args(words[1:]) for words in lines]
    assert len(parsed) == 4 and parsed[1].lora_dir == "~/loras"
    assert (parsed[2].models_dir, parsed[2].model) == ("~/models", "photo")


def test_the_several_gpus_commands_are_what_the_commands_take():
    """docs/several-gpus.md starts a front and two workers, twice (one model; two models from a models folder):
    each line's flags parse, with the values shown."""
    from server.cli import build_parser as server_parser
    from server.worker import build_parser as worker_parser

    text = (REPO / "docs" / "several-gpus.md").read_text(encoding="utf-8")
    blocks = [part.split("```", 1)[0] for part in text.split("```bash")[1:]]
    assert len(blocks) == 2
    for n, block in enumerate(blocks):
        lines = [shlex.split(line.split("#", 1)[0].rstrip(" &")) for line in block.splitlines()
                 if line.startswith(".venv/bin/taue-")]
        fronts = [server_parser().parse_args(words[1:]) for words in lines if words[0].endswith("taue-server")]
        workers = [worker_parser().parse_args(words[1:]) for words in lines if words[0].endswith("taue-worker")]
        assert len(fronts) == 1 and len(workers) == 2
        assert {w.queue for w in workers} == {fronts[0].queue} and {w.device for w in workers} == {"cuda:0", "cuda:1"}
        if n == 1:  # the models block: the front's default is one the workers serve
            assert {w.models_dir for w in workers} == {"~/models"}
            assert fronts[0].model in {w.model for w in workers} and len({w.model for w in workers}) == 2




def test_the_style_file_in_the_server_docs_is_a_style(tmp_path):
    """docs/server.md's example style file is read as a style (as <data_dir>/styles/<name>.json)."""
    from server.styles import load_styles

    text = (REPO / "docs" / "server.md").read_text(encoding="utf-8")
    block = text.split("```json", 1)[1].split("```", 1)[0]
    (tmp_path / "watercolor.json").write_text(block)
    style = load_styles(tmp_path)["watercolor"]
    assert style.fields["model"] == "photo" and style.fields["loras"][0]["name"] == "watercolor"
