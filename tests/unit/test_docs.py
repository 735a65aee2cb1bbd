"""The README stays accurate: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

from imagematch.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    missing = [name for name in Settings.model_fields if f"IMAGEMATCH_{name.upper()}" not in README]
    assert not missing


def test_every_cli_command_is_in_the_readme() -> None:
    from imagematch.cli import app

    shown = [c for c in app.registered_commands if c.callback and not c.hidden]  # not the old spellings
    commands = [c.name or c.callback.__name__ for c in shown if c.callback]
    commands += [g.name for g in app.registered_groups if g.name]
    assert len(commands) == 14
    assert all(f"imagematch {name}" in README for name in commands)
