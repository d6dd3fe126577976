"""Who answers ARP for an address on the lab bridge, every `interval` seconds, run inside the lab's namespace:

    python -m lab.arpwatch br0 192.168.100.1 192.168.100.100 OUT [--interval 0.1]

Broadcasts a who-has request from the source address every interval (always broadcast: a unicast probe, as
`arping` sends after the first reply, would ask one holder only) and writes one line per request to OUT:
`<epoch of the request> <MACs that answered it within the interval, comma-separated>`. Two MACs on one line: two
nodes hold the address at once. iputils' arping cannot do this (whole seconds only for -i and -w).
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
import time

ETH_P_ARP = 0x0806


def request(src_mac: bytes, src_ip: bytes, target: bytes) -> bytes:
    eth = b"\xff" * 6 + src_mac + ETH_P_ARP.to_bytes(2, "big")
    arp = bytes.fromhex("0001080006040001") + src_mac + src_ip + b"\x00" * 6 + target
    return eth + arp


def replier(frame: bytes, target: bytes) -> str | None:
    """The sender MAC of an ARP reply for `target`, else None."""
    if len(frame) < 42 or frame[12:14] != ETH_P_ARP.to_bytes(2, "big") or frame[20:22] != b"\x00\x02":
        return None
    if frame[28:32] != target:
        return None
    return frame[22:28].hex(":")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.arpwatch")
    p.add_argument("iface")
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("out")
    p.add_argument("--interval", type=float, default=0.1)
    a = p.parse_args(argv)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    sock.bind((a.iface, ETH_P_ARP))
    src_mac = sock.getsockname()[4]
    target = ipaddress.IPv4Address(a.target).packed
    frame = request(src_mac, ipaddress.IPv4Address(a.source).packed, target)
    with open(a.out, "a", buffering=1) as out:
        while True:
            at = time.time()
            sock.send(frame)
            macs: set[str] = set()
            deadline = at + a.interval
            while (left := deadline - time.time()) > 0:
                sock.settimeout(left)
                try:
                    mac = replier(sock.recv(128), target)
                except TimeoutError:
                    break
                if mac is not None:
                    macs.add(mac)
            out.write(f"{at:.3f} {','.join(sorted(macs))}\n")


if __name__ == "__main__":
    sys.exit(main())
