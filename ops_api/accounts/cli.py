"""`cityops user add|invite|list|disable|password|tenancies|end-tenancy`: accounts from the command line.

A landlord officer is added with their organisation: `cityops user add NAME --role landlord
--landlord ID` (the landlord must exist: POST /landlords).

Whoever may run this may reach the database, so it needs no sign-in: it is how the very
first admin is made. Passwords are never arguments (they would sit in the shell history and
the process list): they are typed at a prompt, or read from stdin or `--password-file`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from cases import store as cases_store
from cityops.errors import CityOpsError
from cityops.services import database_for
from cityops.settings import Settings
from cityops.storage import Database, status
from ops_api.accounts import invitations, store, tenancies
from ops_api.accounts.passwords import check_strength
from ops_api.accounts.roles import Role, User
from ops_api.errors import Conflict, InvalidRequest

ACCOUNTS_MIGRATION = 18  # 0011 made the accounts tables, 0018 the tenancies this code writes
LANDLORDS_MIGRATION = 29  # landlords and users.landlord_id (the landlord role)


def register(commands: argparse._SubParsersAction[Any]) -> None:
    user = commands.add_parser("user", help="manage API users: add, invite a householder, list, disable",
                               description="Users of the operations API and householder invitations.")
    actions = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", allow_abbrev=False,  # --password must not pass for --password-file
                             help="create a user (the first admin too); the password is prompted for",
                             description="Create a user. The password is prompted for on a terminal, otherwise "
                                         "read from the first line of stdin, or from --password-file.")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--household", help="householder: the household they live in")
    add.add_argument("--landlord", help="landlord: the landlord organisation they work for (its id)")
    add.add_argument("--name", help="display name (default: the username)")
    add.add_argument("--password-file", type=Path, help="read the password from the first line of this file "
                                                        "('-' for stdin)")
    add.set_defaults(handler=run_add)

    invite = actions.add_parser("invite", help="print a single-use invitation link for a householder",
                                description="Create an invitation for a household and print its link "
                                            "(CITYOPS_ACCOUNTS__PUBLIC_BASE_URL + /invite/<token>).")
    invite.add_argument("household_id")
    invite.add_argument("--days", type=float,
                        help="valid for this many days (default CITYOPS_ACCOUNTS__INVITATION_TTL)")
    invite.add_argument("--join", action="store_true",
                        help="join the current tenancy (a partner, a flatmate); without it the link starts a new "
                             "tenancy and the current members' access ends now")
    invite.add_argument("--json", action="store_true", help="print JSON instead of text")
    invite.set_defaults(handler=run_invite)

    listing_t = actions.add_parser("tenancies", help="list household memberships: who, from when, to when, why",
                                   description="Memberships of households, newest first.")
    listing_t.add_argument("--household")
    listing_t.add_argument("--user", help="username or id")
    listing_t.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing_t.set_defaults(handler=run_tenancies)

    end = actions.add_parser("end-tenancy", help="end a householder's membership now, with a reason",
                             description="End a householder's membership of their household now: from their next "
                                         "request they see nothing of it (their account and sessions stay).")
    end.add_argument("user", help="username or id")
    end.add_argument("--reason", required=True, help="why (kept with the membership)")
    end.set_defaults(handler=run_end_tenancy)

    listing = actions.add_parser("list", help="list users", description="List users.")
    listing.add_argument("--role", choices=[r.value for r in Role])
    listing.add_argument("--household")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(handler=run_list)

    disable = actions.add_parser("disable", help="disable a user and end their sessions",
                                 description="Disable a user (by username or id); their sessions end at once.")
    disable.add_argument("user")
    disable.set_defaults(handler=run_disable)

    password = actions.add_parser("password", allow_abbrev=False,
                                  help="set a user's password (prompted); their sessions end",
                                  description="Set a new password for a user; their sessions end at once.")
    password.add_argument("user")
    password.add_argument("--password-file", type=Path, help="read it from this file's first line ('-' for stdin)")
    password.set_defaults(handler=run_password)


def read_password(password_file: Path | None) -> str:
    """From the file ('-': stdin), else a prompt (twice) on a terminal, else stdin's first line."""
    if password_file is not None:
        try:
            text = sys.stdin.read() if str(password_file) == "-" else password_file.read_text()
        except OSError as exc:
            raise InvalidRequest(f"cannot read {password_file}: {exc.strerror}", field="--password-file",
                                 hint="give a readable file, or '-' for stdin") from None
        password = text.splitlines()[0] if text else ""
    elif sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise InvalidRequest("the two passwords differ", field="password", hint="type the same password twice")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    check_strength(password)
    return password


async def _accounts_db_ready(db: Database) -> None:
    pending = (await status(db)).pending
    if any(m.version <= ACCOUNTS_MIGRATION for m in pending):
        raise CityOpsError("the database has no accounts tables yet (migrations are pending)",
                           hint="run `cityops db migrate` first")


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, default=str))


def check_landlord(role: str, landlord_id: str | None) -> str | None:
    """A landlord officer needs their organisation, and only they have one."""
    if role == Role.LANDLORD.value and not landlord_id:
        raise InvalidRequest("a landlord officer needs the landlord organisation they work for", field="--landlord",
                             hint="GET /landlords lists them; an admin adds one with POST /landlords")
    if role != Role.LANDLORD.value and landlord_id:
        raise InvalidRequest(f"only a landlord officer works for a landlord, not a {role}", field="--landlord")
    return landlord_id


async def run_add(args: argparse.Namespace, settings: Settings) -> int:
    landlord_id = check_landlord(args.role, args.landlord)
    password = read_password(args.password_file)
    async with database_for(settings) as db:
        await _accounts_db_ready(db)
        if landlord_id is None:
            user = await store.create_user(db, username=args.username, password=password, role=args.role,
                                           household_id=args.household, display_name=args.name, created_by="cli")
        else:
            user = await _add_landlord_officer(db, args, password, landlord_id)
    where = f" of household {user.household_id}" if user.household_id else ""
    where += f" of landlord {landlord_id}" if landlord_id else ""
    print(f"created {user.role.value} {user.username}{where} ({user.user_id}); sign in at "
          f"{settings.accounts.public_base_url.rstrip('/')}/login")
    return 0


async def _add_landlord_officer(db: Database, args: argparse.Namespace, password: str, landlord_id: str) -> User:
    """The user and their organisation in one transaction (an unknown landlord makes no user)."""
    if any(m.version <= LANDLORDS_MIGRATION for m in (await status(db)).pending):
        raise CityOpsError("the database has no landlords yet (migrations are pending)",
                           hint="run `cityops db migrate` first")
    new = await store.prepare_user(username=args.username, password=password, role=Role.LANDLORD,
                                   display_name=args.name, created_by="cli")
    async with db.transaction() as conn:
        if not await cases_store.landlord_exists(conn, landlord_id):
            raise InvalidRequest(f"no landlord {landlord_id!r}", field="--landlord",
                                 hint="an admin adds it with POST /landlords")
        user = await store.insert_user(conn, new)
        await cases_store.set_user_landlord(conn, user.user_id, landlord_id)
    return user


async def run_invite(args: argparse.Namespace, settings: Settings) -> int:
    ttl = timedelta(days=args.days) if args.days is not None else settings.accounts.invitation_ttl
    if ttl <= timedelta(0):
        raise InvalidRequest("must be more than 0", field="--days")
    async with database_for(settings) as db:
        await _accounts_db_ready(db)
        invitation = await invitations.create_invitation(db, args.household_id, created_by="cli", ttl=ttl,
                                                         new_tenancy=not args.join)
    url = invitation.url(settings.accounts.public_base_url)
    if args.json:
        _print_json({"household_id": invitation.household_id, "url": url, "expires_at": invitation.expires_at,
                     "new_tenancy": invitation.new_tenancy, "ended": [t.as_json() for t in invitation.ended]})
    else:
        kind = "a new tenancy" if invitation.new_tenancy else "joining the current tenancy"
        print(f"invitation for household {invitation.household_id} ({kind}), valid once until "
              f"{invitation.expires_at:%Y-%m-%d %H:%M %Z}:\n{url}\n(shown once: send it to the householder now)")
        if invitation.ended:
            print(f"ended the membership of {len(invitation.ended)} previous member(s)")
    return 0


async def run_tenancies(args: argparse.Namespace, settings: Settings) -> int:
    from devices.cli import table

    async with database_for(settings) as db:
        await _accounts_db_ready(db)
        user_id = (await store.find_user(db, args.user)).user.user_id if args.user else None
        rows = await tenancies.listing(db, household_id=args.household, user_id=user_id)
    if args.json:
        _print_json([t.as_json() for t in rows])
        return 0
    print(table(("household", "user", "from", "to", "ended by", "reason"),
                [[t.household_id, t.user_id, t.starts_at, t.ends_at or "", t.ended_by or "", t.end_reason or ""]
                 for t in rows]))
    print(f"{len(rows)} membership(s)")
    return 0


async def run_end_tenancy(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        await _accounts_db_ready(db)
        record = await store.find_user(db, args.user)
        ended = await tenancies.end(db, record.user.user_id, by="cli", reason=args.reason)
    print(f"ended {record.user.username}'s membership of household {ended.household_id} "
          f"(from {ended.starts_at:%Y-%m-%d %H:%M}); they see nothing of it from their next request")
    return 0


async def run_list(args: argparse.Namespace, settings: Settings) -> int:
    from devices.cli import table

    async with database_for(settings) as db:
        await _accounts_db_ready(db)
        records = await store.list_users(db, role=Role(args.role) if args.role else None, household_id=args.household)
    if args.json:
        _print_json([r.as_json() for r in records])
        return 0
    print(table(("username", "role", "household", "name", "state", "created", "id"),
                [[r.user.username, r.user.role.value, r.user.household_id, r.user.display_name,
                  "disabled" if r.disabled else "active", r.created_at, r.user.user_id] for r in records]))
    print(f"{len(records)} user(s)")
    return 0


async def run_disable(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        await _accounts_db_ready(db)
        record = await store.find_user(db, args.user)
        if record.user.role is Role.ADMIN and not record.disabled and await store.count_admins(db) <= 1:
            raise Conflict("this is the last enabled admin", hint="add another admin first (`cityops user add`)")
        await store.disable_user(db, record.user.user_id)
    print(f"disabled {record.user.username}; their sessions are closed")
    return 0


async def run_password(args: argparse.Namespace, settings: Settings) -> int:
    async with database_for(settings) as db:
        await _accounts_db_ready(db)
        record = await store.find_user(db, args.user)
        password = read_password(args.password_file)
        await store.update_user(db, record.user.user_id, password=password)
    print(f"new password set for {record.user.username}; their sessions are closed")
    return 0
