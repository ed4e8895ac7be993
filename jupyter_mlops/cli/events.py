"""``jupyter mlops events …``: subscriptions, the event log, replay and delivery (for cron)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from jupyter_mlops.cli.core import result

if TYPE_CHECKING:
    from jupyter_mlops.cli.core import Commands
    from jupyter_mlops.render import Result
    from jupyter_mlops.workspace import Workspace


def subscribe(ws: Workspace, a: argparse.Namespace) -> Result:
    sub = ws.events.subscribe(
        a.name,
        webhook=a.webhook,
        email=a.email,
        types=a.type,
        subject=a.subject,
        secret=a.secret,
        max_attempts=a.max_attempts,
        smtp=a.smtp,
    )
    return result(sub, f"Subscribed {sub.name} ({sub.kind} {sub.target}).")


def list_subscriptions(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.events.subscriptions())


def unsubscribe(ws: Workspace, a: argparse.Namespace) -> Result:
    ws.events.unsubscribe(a.name)
    return result({"name": a.name, "unsubscribed": True}, f"Unsubscribed {a.name}.")


def tail(ws: Workspace, a: argparse.Namespace) -> Result:
    events = ws.events.tail(types=a.type, after=a.after, limit=a.limit)
    if not a.follow:
        return result(events)
    from jupyter_mlops.render import Result, to_json

    last = events[-1].seq if events else a.after or 0
    for event in events:
        print(to_json(event) if getattr(a, "json", False) else Result(event).text(), flush=True)
    try:
        while True:  # until Ctrl-C
            time.sleep(1.0)
            for event in ws.events.tail(types=a.type, after=last, limit=a.limit):
                last = event.seq or last
                print(to_json(event) if getattr(a, "json", False) else Result(event).text(), flush=True)
    except KeyboardInterrupt:
        return result([], "")


def replay(ws: Workspace, a: argparse.Namespace) -> Result:
    count = ws.events.replay(a.name, since=a.since, dead_only=a.dead)
    left = ws.events.deliver(timeout=a.wait)
    return result({"name": a.name, "queued": count, "pending": left}, f"Queued {count} event(s) for {a.name}.")


def deliver(ws: Workspace, a: argparse.Namespace) -> Result:
    left = ws.events.deliver(timeout=a.wait)
    return result({"pending": left}, f"Delivered what was due; {left} delivery(ies) still pending.")


def deliveries(ws: Workspace, a: argparse.Namespace) -> Result:
    return result(ws.events.deliveries(a.name, status=a.status, limit=a.limit))


def add_commands(commands: Commands) -> None:
    group = commands.group("events", "lifecycle events: subscriptions, the log, delivery")
    p = commands.command(group, "subscribe", subscribe, "subscribe a webhook or an e-mail address to events")
    p.add_argument("name")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--webhook", metavar="URL")
    target.add_argument("--email", metavar="ADDRESS")
    p.add_argument("--type", action="append", metavar="TYPE", help="event type (repeatable; default: all)")
    p.add_argument("--subject", default="*", help="glob on the subject, e.g. 'models/churn/*'")
    p.add_argument("--secret", help="webhook signing secret (whsec_...; generated when not given)")
    p.add_argument("--max-attempts", type=int, default=8, help="dead-letter after this many failures")
    p.add_argument("--smtp", metavar="HOST:PORT", help="SMTP server for --email (default: $MLOPS_SMTP)")
    commands.command(group, "list", list_subscriptions, "list subscriptions")
    p = commands.command(group, "unsubscribe", unsubscribe, "remove a subscription")
    p.add_argument("name")
    p = commands.command(group, "tail", tail, "show the newest events (--follow: keep printing new ones)")
    p.add_argument("--type", action="append", metavar="TYPE")
    p.add_argument("--after", type=int, metavar="SEQ", help="only events after this sequence number")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--follow", action="store_true")
    p = commands.command(group, "replay", replay, "deliver events to a subscription again")
    p.add_argument("name")
    p.add_argument("--since", type=int, metavar="SEQ", help="every matching event after this sequence number")
    p.add_argument("--dead", action="store_true", help="only its dead-lettered deliveries")
    p.add_argument("--wait", type=float, default=5.0, help="seconds to spend delivering before returning")
    p = commands.command(group, "deliver", deliver, "deliver pending events now (for cron)")
    p.add_argument("--wait", type=float, default=0.0, help="also wait for retries falling due within SECONDS")
    p = commands.command(group, "deliveries", deliveries, "the delivery log of a subscription")
    p.add_argument("name")
    p.add_argument("--status", choices=["pending", "delivered", "dead"])
    p.add_argument("--limit", type=int, default=100)
