"""Provisioning: the site (secret, CA, broker, hub config), its nodes
(credentials, ACL, hub registration, bundles, labels) and zones."""


class ProvisioningError(Exception):
    """A provisioning step cannot be done as asked; the message says why and
    what to do. ``rounds-provision`` shows it and exits 1."""
