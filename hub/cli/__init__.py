"""``rounds-hub``, the hub's command line: ``main`` (the group, ``ingest`` and
``web``), ``roster`` and ``export`` (area commands), ``support`` (config and
database for every command). Thin: each command calls an area's functions.
"""
