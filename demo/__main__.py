"""``python -m demo`` (what ``make demo`` runs): the whole system on one
machine. Kept out of the hub: it provisions a site with ``rounds-provision``
and starts the node's processes beside the hub's, which the hub itself never
does."""

import click

from .run import run_demo


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", default="demo-data", show_default=True, type=click.Path(),
              help="Where the demo keeps its databases, configs and logs (wiped first).")
@click.option("--web-port", default=8000, show_default=True, help="Dashboard port.")
@click.option("--portal-port", default=8080, show_default=True, help="Node portal port.")
@click.option("--broker-port", default=18830, show_default=True, help="Mosquitto port.")
@click.option("--phones", default=14, show_default=True, help="Scripted phones that check in.")
@click.option("--contest-portal-port", default=None, type=int,
              help="The seminar room node's portal port, where the contest is scored "
                   "(default: --portal-port + 1 when free, else any free port).")
def main(data_dir, web_port, portal_port, broker_port, phones, contest_portal_port):
    """Run the whole system on this machine, on 127.0.0.1 only.

    Provisions a demo site in DATA_DIR/site as a technician does, printing
    each command: `rounds-provision site init` (CA, broker TLS certificate,
    hub.json, Mosquitto config) and, with Mosquitto running that config (TLS
    only, on --broker-port; no system service needed), `rounds-provision
    node add hall-a-1 --zone hall-a` (credentials, ACL, hub registration,
    bundle). Then starts the hub (ingest + dashboard on --web-port) with the
    site's hub.json, the simulated lecture-hall node (sync, presence, portal
    on --portal-port) with its bundle's node.json, the keys changed for this
    machine printed with the reason, and likewise the seminar room's node
    seminar-2-1 (sync, portal on --contest-portal-port), where a contest is
    scored.

    The hub is seeded with 24 staff, 7 zones on 4 floor plans, 4 nodes, 12
    weeks of reports and tickets, yesterday's training, volunteer hours
    waiting for review, a lecture happening now, a speech contest next door
    and a satisfaction survey in two wards with three weeks of responses.
    Scripted phones then check in (by presence or through the portal over
    HTTP, exactly as a person's phone would) and report problems with
    photos, and the dashboard shows it within seconds. Next door the
    contest's audience checks in and, with its judges, scores three acts on
    the portal while the office opens and closes each act; the big screen
    shows the running, then the final ranking. The sign-ins and where to
    look (survey board, the contest's big screen) are printed: admin,
    office, the cleaning lead (a department reviewer) and staff D007 with
    PIN 0007. Ctrl-C stops everything. Logs are in DATA_DIR/logs.

    Example:

        python -m demo --web-port 8000 --portal-port 8080
    """
    try:
        run_demo(data_dir, web_port, portal_port, broker_port, phones, echo=click.echo,
                 contest_portal_port=contest_portal_port)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":
    main()
