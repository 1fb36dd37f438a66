"""``rounds-provision``: site, node and zone provisioning for the facilities team."""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Provision a Rounds site and its nodes.

    The site and node commands come with the provisioning work; today the
    broker configuration used by the demo and the tests lives in
    provisioning/broker.py.

    Example:

        rounds-provision --help
    """


if __name__ == "__main__":
    main()
