"""``--help`` says what an option does when it is not given: every option with a default names
it, so the help a user reads matches what the command does."""

from __future__ import annotations

import argparse

import pytest

from exporter.cli import _parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_option_with_a_default_names_it_in_its_help(command: str) -> None:
    silent = []
    for action in _commands()[command]._actions:
        if not action.option_strings or action.help in (None, argparse.SUPPRESS):
            continue
        if action.default in (None, False, [], argparse.SUPPRESS) or action.nargs == 0:
            continue
        if "default" not in str(action.help):
            silent.append(f"{action.option_strings[0]} (default {action.default!r})")
    assert silent == []


def test_check_config_says_it_checks_the_web_config_rather_than_serving_with_it() -> None:
    """``check-config`` loads the web config once to check it; it serves no connection."""
    web = next(a for a in _commands()["check-config"]._actions if a.dest == "web_config_file")
    assert "per connection" not in str(web.help)
    assert "check" in str(web.help)
