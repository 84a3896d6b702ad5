"""A tiny authoritative DNS server on loopback for tests, answering from a dnspython zone over
UDP and TCP: what a test needs to give yubin real DNS answers (TXT, SRV, PTR…) without the
Internet. Names outside the zone get NXDOMAIN; names in it without the asked type, NOERROR
with no answer."""

import socket
import socketserver
import struct
import threading

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.zone


def answer(zone: dns.zone.Zone, wire: bytes) -> bytes:
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    q = query.question[0]
    node = zone.get_node(q.name) if q.name.is_subdomain(zone.origin) else None
    if node is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
    else:
        rdataset = node.get_rdataset(dns.rdataclass.IN, q.rdtype)
        if rdataset is not None:
            rrset = response.find_rrset(response.answer, q.name, dns.rdataclass.IN, q.rdtype, create=True)
            rrset.update(rdataset)
    return response.to_wire()


class DnsServer:
    """Serves `zone_text` (origin `origin`) on 127.0.0.1:port, UDP and TCP, in threads."""

    def __init__(self, zone_text: str, origin: str = "."):
        self.zone = dns.zone.from_text(zone_text, origin=origin, check_origin=False, relativize=False)
        server = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                sock.sendto(answer(server.zone, data), self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                while True:
                    head = self.request.recv(2)
                    if len(head) < 2:
                        return
                    (n,) = struct.unpack("!H", head)
                    data = b""
                    while len(data) < n:
                        chunk = self.request.recv(n - len(data))
                        if not chunk:
                            return
                        data += chunk
                    out = answer(server.zone, data)
                    self.request.sendall(struct.pack("!H", len(out)) + out)

        # One port for both: bind TCP first, then UDP on the same number.
        for _ in range(20):
            tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tcp)
            port = tcp.server_address[1]
            try:
                udp = socketserver.ThreadingUDPServer(("127.0.0.1", port), Udp)
                break
            except OSError:
                tcp.server_close()
        else:
            raise RuntimeError("no free port for the test DNS server")
        self.port = port
        self.servers = [tcp, udp]
        for s in self.servers:
            s.daemon_threads = True
            threading.Thread(target=s.serve_forever, daemon=True).start()

    def close(self):
        for s in self.servers:
            s.shutdown()
            s.server_close()
