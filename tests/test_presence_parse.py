"""``edge.presence.parse.parse``: hand-built frames -> exact sightings, the
frames it must ignore, and fuzzing (it never raises)."""

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import raw

from edge.presence.parse import Sighting, parse

PHONE = "a6:3f:0c:11:7e:42"
NODE = "02:00:5e:10:00:01"
TS = 1_764_000_000.25


def chaddr(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", "")) + b"\x00" * 10


def dhcp(message_type, mac=PHONE, options=(), op=1, sport=68, dport=67, ciaddr="0.0.0.0",
         eth_src=None, src="0.0.0.0", dst="255.255.255.255") -> bytes:
    return raw(Ether(src=eth_src or mac, dst="ff:ff:ff:ff:ff:ff")
               / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport)
               / BOOTP(op=op, chaddr=chaddr(mac), xid=0x1234, ciaddr=ciaddr)
               / DHCP(options=[("message-type", message_type), *options, "end"]))


def arp(op=1, mac=PHONE, psrc="10.42.0.23", pdst="10.42.0.1", eth_dst="ff:ff:ff:ff:ff:ff"):
    return raw(Ether(src=mac, dst=eth_dst) / ARP(op=op, hwsrc=mac, psrc=psrc, pdst=pdst,
                                                 hwdst="00:00:00:00:00:00" if op == 1
                                                 else NODE))


# --- what it reads -----------------------------------------------------------------------

def test_dhcp_discover_with_hostname():
    frame = dhcp("discover", options=[("hostname", b"Dr-Li-iPhone")])
    assert parse(frame, TS) == Sighting(PHONE, "dhcp-discover", TS, "Dr-Li-iPhone", None)


def test_dhcp_request_gives_the_requested_address():
    frame = dhcp("request", options=[("requested_addr", "10.42.0.23"),
                                     ("server_id", "10.42.0.1"), ("hostname", b"pixel-7")])
    assert parse(frame, TS) == Sighting(PHONE, "dhcp-request", TS, "pixel-7", "10.42.0.23")


def test_dhcp_renewal_gives_the_client_address():
    """A renewal is unicast from the leased address: ciaddr says it."""
    frame = dhcp("request", ciaddr="10.42.0.57", src="10.42.0.57", dst="10.42.0.1")
    assert parse(frame, TS) == Sighting(PHONE, "dhcp-request", TS, None, "10.42.0.57")


@pytest.mark.parametrize("message_type", ["inform", "release", "decline"])
def test_other_client_messages_are_dhcp_other(message_type):
    assert parse(dhcp(message_type), TS) == Sighting(PHONE, "dhcp-other", TS)


def test_the_device_is_chaddr_not_the_ethernet_source():
    """Behind a relay (or a bridge that rewrites it) the Ethernet source is
    not the phone; chaddr is."""
    frame = dhcp("discover", eth_src=NODE)
    assert parse(frame, TS).mac == PHONE


def test_plain_bootp_without_options_is_dhcp_other():
    frame = raw(Ether(src=PHONE, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0",
                dst="255.255.255.255") / UDP(sport=68, dport=67) / BOOTP(chaddr=chaddr(PHONE)))
    assert parse(frame, TS) == Sighting(PHONE, "dhcp-other", TS)


def test_hostname_bytes_that_are_not_utf8_do_not_break_it():
    frame = dhcp("discover", options=[("hostname", b"\xff\xfe phone\x00")])
    sighting = parse(frame, TS)
    assert sighting.mac == PHONE and "phone" in sighting.hostname


def test_arp_request_and_reply():
    assert parse(arp(op=1), TS) == Sighting(PHONE, "arp", TS, None, "10.42.0.23")
    assert parse(arp(op=2, eth_dst=NODE), TS) == Sighting(PHONE, "arp", TS, None, "10.42.0.23")


def test_arp_probe_from_0_0_0_0_is_still_a_sighting():
    """A phone checks an address before using it (RFC 5227): sender IP 0.0.0.0."""
    assert parse(arp(psrc="0.0.0.0", pdst="10.42.0.23"), TS) == Sighting(PHONE, "arp", TS)


def test_gratuitous_arp_is_a_sighting():
    assert parse(arp(psrc="10.42.0.23", pdst="10.42.0.23"), TS).mac == PHONE


def test_ethernet_padding_after_the_datagram_is_ignored():
    frame = arp() + b"\x00" * 18  # padded to the 60-byte minimum and beyond
    assert parse(frame, TS) == Sighting(PHONE, "arp", TS, None, "10.42.0.23")
    padded = dhcp("discover") + b"\x35\x01\x03"  # bytes after the IP datagram: not options
    assert parse(padded, TS).kind == "dhcp-discover"


# --- what it ignores --------------------------------------------------------------------

def test_bootreply_from_the_server_is_ignored():
    """The server's OFFER/ACK carries the client's chaddr, but a reply shows
    the server spoke, not that the phone is (still) here."""
    frame = dhcp("offer", op=2, sport=67, dport=68, src="10.42.0.1", dst="10.42.0.23")
    assert parse(frame, TS) is None
    # ... also a BOOTREPLY sent to the server port (a relay's) is not a client's.
    assert parse(dhcp("ack", op=2), TS) is None


@pytest.mark.parametrize("frame", [
    raw(Ether(src=PHONE, dst=NODE) / IP(src="10.42.0.23", dst="10.42.0.1")
        / TCP(sport=40000, dport=80, flags="S")),
    raw(Ether(src=PHONE, dst=NODE) / IP(src="10.42.0.23", dst="10.42.0.1")
        / UDP(sport=5353, dport=53) / (b"\x00" * 300)),
    # UDP between the DHCP ports the wrong way round (server -> client port)
    raw(Ether(src=PHONE, dst=NODE) / IP(src="10.42.0.23", dst="10.42.0.1")
        / UDP(sport=67, dport=68) / BOOTP(chaddr=chaddr(PHONE))),
    raw(Ether(src=PHONE, dst="33:33:00:00:00:01", type=0x86DD) / (b"\x60" + b"\x00" * 60)),
], ids=["tcp", "udp-dns", "udp-67-to-68", "ipv6"])
def test_other_traffic_is_ignored(frame):
    assert parse(frame, TS) is None


def test_vlan_tagged_frames_are_ignored():
    """A hall node listens on its VLAN interface, where frames are untagged."""
    frame = raw(Ether(src=PHONE, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=42)
                / ARP(hwsrc=PHONE, psrc="10.42.0.23", pdst="10.42.0.1"))
    assert parse(frame, TS) is None


@pytest.mark.parametrize("mac", ["ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:fb", "00:00:00:00:00:00",
                                 "33:33:00:00:00:01"])
def test_broadcast_multicast_and_zero_macs_are_not_devices(mac):
    assert parse(arp(mac=mac), TS) is None
    assert parse(dhcp("discover", mac=mac, eth_src=PHONE), TS) is None


def test_non_ethernet_hardware_types_are_ignored():
    frame = bytearray(dhcp("discover"))
    frame[14 + 20 + 8 + 1] = 6  # BOOTP htype: IEEE 802 instead of Ethernet
    assert parse(bytes(frame), TS) is None
    frame = bytearray(arp())
    frame[14 + 4] = 8  # ARP hlen 8
    assert parse(bytes(frame), TS) is None


def test_ip_fragments_after_the_first_are_ignored():
    frame = bytearray(dhcp("discover"))
    struct.pack_into("!H", frame, 14 + 6, 0x0010)  # fragment offset 16 (x8 bytes)
    assert parse(bytes(frame), TS) is None


@pytest.mark.parametrize("frame, fixed", [
    (dhcp("discover", options=[("hostname", b"x")]), 14 + 20 + 8 + 236), (arp(), 14 + 28)],
    ids=["dhcp", "arp"])
def test_every_truncation_is_none_or_the_same_device(frame, fixed):
    """Cut anywhere before the end of the fixed part: None. A DHCP frame cut
    inside its options still names the device (BOOTP's fixed part is whole)."""
    whole = parse(frame, TS)
    for cut in range(len(frame)):
        sighting = parse(frame[:cut], TS)
        if cut < fixed:
            assert sighting is None, cut
        else:
            assert sighting is not None and sighting.mac == whole.mac, cut


def test_truncated_ip_header_length_claims():
    frame = bytearray(dhcp("discover"))
    frame[14] = 0x4F  # IHL 15 (60 bytes): the UDP header would be inside BOOTP
    assert parse(bytes(frame), TS) is None or parse(bytes(frame), TS).mac == PHONE
    frame[14] = 0x44  # IHL 4 (16 bytes): not IPv4 at all
    assert parse(bytes(frame), TS) is None
    frame = bytearray(dhcp("discover"))
    struct.pack_into("!H", frame, 14 + 2, 100)  # total length: cut before BOOTP's end
    assert parse(bytes(frame), TS) is None


def test_an_option_running_past_the_datagram_keeps_what_came_before():
    frame = dhcp("request", options=[("hostname", b"pixel-7")])
    cut = frame[:-3]  # 'end' and the last bytes of the hostname gone
    ip_len = len(cut) - 14
    cut = cut[:16] + struct.pack("!H", ip_len) + cut[18:]
    sighting = parse(cut, TS)
    assert sighting.mac == PHONE and sighting.kind == "dhcp-request" and sighting.hostname is None


# --- fuzzing ------------------------------------------------------------------------------

VALID = [dhcp("discover", options=[("hostname", b"Dr-Li-iPhone")]),
         dhcp("request", options=[("requested_addr", "10.42.0.23")]), arp(), arp(op=2)]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=700))
def test_random_bytes_never_raise(frame):
    result = parse(frame, TS)
    assert result is None or isinstance(result, Sighting)


@settings(max_examples=1500, deadline=None)
@given(base=st.sampled_from(VALID),
       edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=12),
       cut=st.integers(0, 400))
def test_mutated_valid_frames_never_raise(base, edits, cut):
    frame = bytearray(base)
    for position, value in edits:
        if position < len(frame):
            frame[position] = value
    frame = bytes(frame[:len(frame) - cut % (len(frame) + 1)])
    result = parse(frame, TS)
    if result is not None:
        assert isinstance(result, Sighting) and result.ts == TS
        assert len(result.mac) == 17 and not int(result.mac[:2], 16) & 1
        assert result.kind in ("dhcp-discover", "dhcp-request", "dhcp-other", "arp")
        assert result.hostname is None or len(result.hostname) <= 64


@settings(max_examples=600, deadline=None)
@given(options=st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=20),
       tail=st.binary(max_size=30))
def test_arbitrary_dhcp_options_never_raise(options, tail):
    """The options walk is the loop over attacker-chosen lengths."""
    head = dhcp("discover")[:14 + 20 + 8 + 236 + 4]
    body = b"".join(bytes([code, len(value)]) + value for code, value in options) + tail
    frame = bytearray(head + body)
    struct.pack_into("!H", frame, 16, len(frame) - 14)  # IP total length covers it all
    result = parse(bytes(frame), TS)
    assert result is not None and result.mac == PHONE  # the fixed part is intact
