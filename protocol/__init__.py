"""The wire contract shared by edge, hub and provisioning: topics, the
envelope, record types and their validation. Small, pure, no I/O."""

PROTOCOL_VERSION = 1
