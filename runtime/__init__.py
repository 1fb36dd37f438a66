"""The runtime pieces that node and hub processes share, beside the pure
wire contract in ``protocol``: opening SQLite the one way both rely on
(``sqlite``), config files and their settings (``settings``), the daemons'
logging, signals and gunicorn (``daemon``), and the MQTT client set-up
(``mqttclient``). These do I/O; ``protocol`` does none."""
