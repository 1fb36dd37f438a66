"""``rounds-provision``: site, node and zone provisioning for the facilities team."""

import json
from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Provision a Rounds site and its nodes.

    The site and node commands come with the provisioning work; today it
    renders a node's OS configuration from its JSON config.

    Example:

        rounds-provision render-node /etc/rounds/node.json ./hall-a-1
    """


@main.command("render-node")
@click.argument("node_config", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
def render_node_command(node_config, out_dir):
    """Render a node's OS configuration (hostapd, dnsmasq, nftables, units).

    NODE_CONFIG is the node's JSON config; the files go to OUT_DIR, and the
    place each is installed on the node is printed beside it.

    Example:

        rounds-provision render-node /etc/rounds/node.json ./hall-a-1
    """
    from .nodeconfig import NodeConfigError, destinations, render_node

    try:
        settings = json.loads(Path(node_config).read_text())
        written = render_node(settings, out_dir)
        places = destinations(settings)
    except (json.JSONDecodeError, NodeConfigError) as exc:
        raise click.ClickException(f"{node_config}: {exc}") from None
    for path in written:
        click.echo(f"{path}  ->  {places.get(path.name, '?')}")


if __name__ == "__main__":
    main()
