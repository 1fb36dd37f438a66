"""Fleet: the edge nodes as the facilities team runs them.

``nodes`` (health, moves between zones), ``registry`` (what
``rounds-provision`` asks of the hub: zones and node registration) and
``site`` (site-wide settings pushed to every node).

Tables it owns: ``nodes``, ``site_settings``.
"""
