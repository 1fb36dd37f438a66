"""The node agent that runs on every Raspberry Pi."""
