"""A paho-mqtt 2.x client set up the way every Rounds daemon needs it:
MQTT v5, credentials, TLS and the Last Will all set before connecting."""

import socket
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .settings import MqttSettings

# CONNACK reason codes after which retrying cannot help.
FATAL_CONNECT_REASONS = {"Bad user name or password", "Not authorized", "Banned",
                         "Client identifier not valid"}


def make_client(
    client_id: str,
    settings: MqttSettings,
    *,
    will: tuple[str, bytes] | None = None,
) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls_ca:
        client.tls_set(ca_certs=settings.tls_ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    if will:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    # paho leaves Nagle on: a lone small message (an ack, one check-in) would
    # wait ~40 ms for more bytes. Set on every socket, so reconnects get it too.
    client.on_socket_open = _no_delay
    return client


def _no_delay(client, userdata, sock) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def session_properties(expiry_seconds: int) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry_seconds
    return props


def is_fatal(reason_code) -> bool:
    return reason_code.is_failure and str(reason_code) in FATAL_CONNECT_REASONS
