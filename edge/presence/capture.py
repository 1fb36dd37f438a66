"""The packet socket: only DHCP and ARP frames reach Python.

An ``AF_PACKET`` raw socket on one interface with a classic BPF program
attached (``SO_ATTACH_FILTER``), so the kernel drops every other frame
before it is queued for us: on a busy lecture-hall VLAN that is nearly all
of them. The filter is the tcpdump expression ``FILTER`` compiled by libpcap
(through scapy's ``compile_filter``, which only needs the libpcap runtime,
Debian ``libpcap0.8``), with three instructions put in front that drop the
node's own outgoing frames (its ARP requests, its dnsmasq's replies): the
socket sees those too, and they are not phones.

The socket is created listening to no protocol, gets its filter, and only
then is bound to the interface with ``ETH_P_ALL``, so no unfiltered frame
is ever queued. Frames are read in bursts (non-blocking ``recv`` until
empty, then ``poll``), and the kernel's counters are read with
``PACKET_STATISTICS`` (``tp_packets`` = frames that passed the filter,
``tp_drops`` = those lost because the socket buffer was full; the kernel
resets both on every read, ``Capture`` adds them up).

Needs CAP_NET_RAW; ``Capture.open`` says so clearly (``CaptureError``)
before trying, and also when the kernel refuses anyway.
"""

import ctypes
import errno
import logging
import os
import select
import socket
import struct
import time
from pathlib import Path

log = logging.getLogger("rounds.presence.capture")

FILTER = "arp or (udp and (port 67 or port 68))"
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
SKF_AD_PKTTYPE_OFF = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE
CAP_NET_RAW = 13
RCVBUF = 4 * 1024 * 1024
SNAPLEN = 2048  # DHCP and ARP frames fit; a longer frame is read cut short
DLT_EN10MB = 1
ALIVE_CHECK = 2.0  # seconds between checks that the interface is still there
SO_RCVBUFFORCE = 33  # not in the socket module

# BPF opcodes for the prefix.
_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_RET_K = 0x06
_INSN = struct.Struct("HBBI")  # struct sock_filter: code, jt, jf, k


class CaptureError(RuntimeError):
    """The sniffer cannot run here; the message says what to do."""


def has_cap_net_raw(status_file: str = "/proc/self/status") -> bool:
    for line in Path(status_file).read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_NET_RAW & 1)
    return False


def check_interface(interface: str) -> int:
    """The interface's index, or CaptureError when there is no such interface."""
    try:
        return socket.if_nametoindex(interface)
    except OSError:
        raise CaptureError(
            f"network interface {interface!r} does not exist: set presence.interface (or "
            f"wifi.interface) in the node config to the interface phones arrive on "
            f"(`ip link` lists them)") from None


def interface_mac(interface: str) -> str | None:
    try:
        return Path(f"/sys/class/net/{interface}/address").read_text().strip().lower() or None
    except OSError:
        return None


def compile_bpf(expression: str = FILTER) -> list[tuple[int, int, int, int]]:
    """``expression`` as classic BPF instructions for Ethernet frames, with the
    "drop outgoing frames" prefix. Raises CaptureError without libpcap."""
    try:
        from scapy.arch.common import compile_filter
        from scapy.error import Scapy_Exception
    except ImportError as exc:  # pragma: no cover - scapy is a dependency
        raise CaptureError(f"scapy is not installed: {exc}") from None
    try:
        program = compile_filter(expression, linktype=DLT_EN10MB)
    except (ImportError, OSError, Scapy_Exception) as exc:
        raise CaptureError(f"cannot compile the BPF filter {expression!r} ({exc}): "
                           "install the libpcap runtime (Debian: apt-get install "
                           "libpcap0.8)") from None
    try:
        body = [(i.code, i.jt, i.jf, i.k) for i in program.bf_insns[:program.bf_len]]
    finally:
        try:
            from scapy.libs.winpcapy import pcap_freecode
            pcap_freecode(ctypes.byref(program))
        except Exception:  # pragma: no cover - freeing is best effort
            pass
    # Jumps are relative, so instructions put in front keep the program valid.
    prefix = [(_BPF_LD_W_ABS, 0, 0, SKF_AD_PKTTYPE_OFF),  # A = skb->pkt_type
              (_BPF_JEQ_K, 0, 1, PACKET_OUTGOING),        # outgoing? -> next : skip it
              (_BPF_RET_K, 0, 0, 0)]                      # drop
    return prefix + body


def attach_filter(sock: socket.socket, instructions) -> None:
    code = b"".join(_INSN.pack(*i) for i in instructions)
    buffer = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    fprog = struct.pack("HL", len(instructions), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)  # the kernel copies it


class Capture:
    """DHCP and ARP frames of ``interface``, filtered in the kernel."""

    def __init__(self, interface: str, expression: str | None = FILTER, rcvbuf: int = RCVBUF):
        self.interface, self.expression, self.rcvbuf = interface, expression, rcvbuf
        self.sock: socket.socket | None = None
        self.packets = 0  # frames that passed the filter (kernel count, cumulative)
        self.drops = 0    # of those, lost for a full socket buffer (cumulative)
        self.received = 0  # frames read by us
        self.ifindex = None
        self._next_check = 0.0

    def open(self) -> "Capture":
        self.ifindex = check_interface(self.interface)
        if not has_cap_net_raw():
            raise CaptureError(
                "the presence sniffer needs CAP_NET_RAW to open a packet socket: run it "
                "as root or through rounds-presence.service (AmbientCapabilities=CAP_NET_RAW)")
        # expression None: no filter at all, every frame (the benchmark's peer).
        program = compile_bpf(self.expression) if self.expression is not None else None
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # no protocol yet
        except PermissionError:
            raise CaptureError("the kernel refused a packet socket (CAP_NET_RAW is "
                               "missing): run it through rounds-presence.service") from None
        try:
            if program is not None:
                attach_filter(sock, program)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.rcvbuf)
            except OSError:  # needs CAP_NET_ADMIN; up to net.core.rmem_max without it
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.bind((self.interface, ETH_P_ALL))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if isinstance(exc, PermissionError):
                raise CaptureError("the kernel refused the packet socket (CAP_NET_RAW?): "
                                   f"{exc}") from None
            raise CaptureError(f"cannot listen on {self.interface}: {exc}") from None
        self.sock = sock
        self.stats()  # start the counters from zero
        self.packets = self.drops = 0
        log.info("capturing on %s: %s (filter in the kernel, %d KiB buffer)",
                 self.interface, self.expression or "every frame",
                 sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 1024)
        return self

    def stats(self) -> tuple[int, int]:
        """Cumulative ``(packets, drops)`` from the kernel (PACKET_STATISTICS)."""
        if self.sock is not None:
            packets, drops = struct.unpack(
                "II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            self.packets += packets
            self.drops += drops
        return self.packets, self.drops

    def read_burst(self, timeout: float = 0.5, limit: int = 1024) -> list[tuple[bytes, float]]:
        """Frames waiting now (up to ``limit``), each with its receive time;
        waits up to ``timeout`` seconds for the first one."""
        sock = self.sock
        frames = []
        recv = sock.recv
        if time.monotonic() >= self._next_check:
            self.check_alive()
        try:
            try:
                frame = recv(SNAPLEN)
            except BlockingIOError:
                if not select.select([sock], [], [], timeout)[0]:
                    return frames
                frame = recv(SNAPLEN)
        except BlockingIOError:
            return frames
        except OSError as exc:
            if exc.errno != errno.ENETDOWN:
                raise
            self._went_down()
            return frames
        now = time.time
        frames.append((frame, now()))
        while len(frames) < limit:
            try:
                frame = recv(SNAPLEN)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.ENETDOWN:
                    raise
                self._went_down()
                break
            frames.append((frame, now()))
        self.received += len(frames)
        return frames

    def _went_down(self) -> None:
        """The interface went down (hostapd restarting the radio, a cable):
        the kernel re-attaches the socket when it comes back up, so wait for
        it; only an interface that is gone stops the capture."""
        self.check_alive()
        log.warning("%s went down; capturing again when it comes back up", self.interface)

    def check_alive(self) -> None:
        """CaptureError when the interface the socket is bound to is gone
        (deleted, or deleted and made again: either way this socket is deaf
        for good). Checked every ``ALIVE_CHECK`` seconds by ``read_burst``."""
        self._next_check = time.monotonic() + ALIVE_CHECK
        try:
            index = socket.if_nametoindex(self.interface)
        except OSError:
            index = None
        if index != self.ifindex:
            raise CaptureError(f"network interface {self.interface!r} disappeared")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> "Capture":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def own_macs(interface: str) -> set[str]:
    """The node's own MAC on ``interface`` (its frames are not a phone's)."""
    mac = interface_mac(interface)
    return {mac} if mac else set()


def pid_cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (for the benchmark)."""
    fields = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
