"""`rounds-hub` commands for the roster and accounts: ``roster import``,
``roster departments``, ``roster add-department`` and ``user add | passwd |
token | list``.

Each change is written with its audit row in one transaction; the actor is
``cli:<login name>`` of whoever ran the command. A relative ``db`` in the
config is taken relative to the config file, as the web app does.
"""

import sys

import click


from hub import audit


from hub.cli.support import cli_actor, hub_config, open_hub_db
from hub.db import write_transaction
from hub.people import account_admin, accounts, roster
from hub.people.roster_import import MAX_IMPORT_BYTES, import_roster


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


# -- roster ------------------------------------------------------------------------

@click.group("roster")
def roster_group():
    """The staff roster: import it from CSV, list and add departments.

    Example:

        rounds-hub --config /etc/rounds/hub.json roster import staff.csv --dry-run
    """


@roster_group.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@click.pass_context
def roster_import(ctx, file, dry_run):
    """Import FILE, a CSV with the columns staff_number, name, department, role.

    All or nothing: when any row has an error, every error is printed with
    its line number, nothing is written, and the command fails. Existing
    people are updated (their PINs are kept); people not in the file stay.

    Example:

        rounds-hub --config /etc/rounds/hub.json roster import staff.csv --dry-run
    """
    data = file.read(MAX_IMPORT_BYTES + 1)
    db = open_hub_db(ctx)
    try:
        with write_transaction(db):
            result = import_roster(db, data, apply=not dry_run, may_grant_admin=True)
            counts = result.counts
            if result.applied:
                audit.record(db, cli_actor(), "roster.import", None,
                             {key: counts[key] for key in ("rows", "new", "update",
                                                           "unchanged")})
    finally:
        db.close()
    for issue in result.issues:
        where = f"line {issue.line}" if issue.line else "file"
        field = f" {issue.field}" if issue.field else ""
        click.echo(f"{file.name}: {where}{field}: {issue.reason}", err=True)
    summary = (f"{counts['rows']} rows: {counts['new']} new, {counts['update']} to update, "
               f"{counts['unchanged']} unchanged, {counts['invalid']} with errors")
    if result.issues:
        raise click.ClickException(f"{summary}; nothing was imported")
    click.echo(f"{summary}; {'applied' if result.applied else 'dry run, nothing written'}")


@roster_group.command("departments")
@click.pass_context
def roster_departments(ctx):
    """List the departments (id, people, name).

    Example:

        rounds-hub --config /etc/rounds/hub.json roster departments
    """
    db = open_hub_db(ctx)
    try:
        for department in roster.departments(db):
            click.echo(f"{department['department']}\t{department['staff']}\t"
                       f"{department['name']}")
    finally:
        db.close()


@roster_group.command("add-department")
@click.argument("department")
@click.argument("name")
@click.pass_context
def roster_add_department(ctx, department, name):
    """Add the department DEPARTMENT (its id) called NAME.

    Example:

        rounds-hub --config /etc/rounds/hub.json roster add-department cardiology 心内科
    """
    db = open_hub_db(ctx)
    try:
        with write_transaction(db):
            added = roster.add_department(db, department, name)
            audit.record(db, cli_actor(), "department.add", f"department:{added['department']}",
                         {"name": added["name"]})
    except roster.RosterError as exc:
        raise _fail(exc) from None
    finally:
        db.close()
    click.echo(f"added department {added['department']}")


# -- accounts ------------------------------------------------------------------------

@click.group("user")
def user_group():
    """Dashboard accounts: add, set passwords, issue API tokens, list.

    Example:

        rounds-hub --config /etc/rounds/hub.json user add alice --role admin
    """


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@user_group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(roster.ROLES),
              help="What the account may do.")
@click.option("--department", default=None, help="The department (dept_reviewer).")
@click.option("--staff-id", default=None, help="The staff number (staff).")
@click.option("--branch", default=None, help="The party branch (branch_reviewer).")
@click.option("--campus", default=None,
              help="On a group hub: the one campus an office account sees (office).")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
@click.pass_context
def user_add(ctx, username, role, department, staff_id, branch, campus, password_stdin):
    """Add the account USERNAME; asks for its password (twice).

    Example:

        rounds-hub user add wang.li --role dept_reviewer --department cardiology

        rounds-hub user add zhao.min --role branch_reviewer --branch "Surgery branch"

        rounds-hub --config group-hub.json user add north.office --role office --campus north
    """
    campuses = hub_config(ctx).get("campuses") or []
    password = _read_password(password_stdin)
    db = open_hub_db(ctx)
    try:
        with write_transaction(db):
            created = account_admin.create_account(db, username, role, password,
                                                   department=department, staff_id=staff_id,
                                                   branch=branch, campus=campus,
                                                   campuses=campuses)
            audit.record(db, cli_actor(), "account.create", f"account:{created['username']}",
                         {"role": role, "department": created["department"],
                          "staff_id": created["staff_id"], "branch": created["branch"],
                          "campus": created["campus"]})
    except roster.RosterError as exc:
        raise _fail(exc) from None
    finally:
        db.close()
    click.echo(f"added {created['username']} ({created['role']})")


@user_group.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
@click.pass_context
def user_passwd(ctx, username, password_stdin):
    """Set the password of USERNAME; asks for it (twice).

    Example:

        rounds-hub --config /etc/rounds/hub.json user passwd wang.li
    """
    password = _read_password(password_stdin)
    db = open_hub_db(ctx)
    try:
        with write_transaction(db):
            account_admin.set_account_password(db, username, password)
            audit.record(db, cli_actor(), "account.password", f"account:{username}")
    except roster.RosterError as exc:
        raise _fail(exc) from None
    finally:
        db.close()
    click.echo(f"password set for {username}")


@user_group.command("token")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for (shown in the audit log).")
@click.pass_context
def user_token(ctx, username, name):
    """Issue an API token for USERNAME and print it once (only its hash is kept).

    Scripts send it as ``Authorization: Bearer <token>``.

    Example:

        rounds-hub --config /etc/rounds/hub.json user token reporting --name "nightly export"
    """
    db = open_hub_db(ctx)
    try:
        with write_transaction(db):
            token = accounts.issue_token(db, username, name)
            audit.record(db, cli_actor(), "account.token", f"account:{username}", {"name": name})
    except accounts.AccountError as exc:
        raise _fail(exc) from None
    finally:
        db.close()
    click.echo(token)


@user_group.command("list")
@click.pass_context
def user_list(ctx):
    """List the accounts: username, role, department, staff number, state.

    Example:

        rounds-hub --config /etc/rounds/hub.json user list
    """
    db = open_hub_db(ctx)
    try:
        rows = account_admin.account_list(db)
    finally:
        db.close()
    for account in rows:
        state = "disabled" if account["disabled"] else (
            "active" if account["password_set"] else "no-password")
        click.echo("\t".join((account["username"], account["role"],
                              account["department"] or "-", account["staff_id"] or "-",
                              state)))


COMMANDS: list[click.Command] = [roster_group, user_group]
