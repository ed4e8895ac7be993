"""``jupyter mlops policy …``: the release policy (protected aliases and what a version needs to hold one)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import result

if TYPE_CHECKING:
    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def policy_show(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.release.policy())


def policy_set(ws: Workspace, a: argparse.Namespace) -> Result:
    rules = ws.release.set_policy(
        protect=a.protect or (),
        require=a.require,
        four_eyes=a.four_eyes,
        unprotect=a.unprotect or (),
    )
    return result(rules, "Policy updated.")


def add_commands(commands: Commands) -> None:
    command = commands.command
    policy = commands.group("policy", "the release policy: protected aliases and what they require")
    command(policy, "show", policy_show, "list the protected aliases and their requirements")
    p = command(policy, "set", policy_set, "protect aliases, change what they require, four-eyes on or off")
    p.add_argument("--protect", action="append", metavar="ALIAS", help="protect ALIAS (repeatable)")
    p.add_argument("--unprotect", action="append", metavar="ALIAS", help="stop protecting ALIAS (repeatable)")
    p.add_argument("--require", metavar="gate,approval", help="what the --protect aliases require")
    p.add_argument(
        "--four-eyes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the approver must not be the requester (for the --protect aliases, else all)",
    )
