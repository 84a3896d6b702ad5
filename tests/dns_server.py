"""A tiny authoritative DNS server on loopback for tests (dnspython, which dkimpy brings).

It answers from a table {name: [(type, text), ...]} over UDP and TCP on one port. A name it does
not know gets NXDOMAIN (so it is the whole DNS tree: a lookup of `_dmarc.test.` or a reverse
name gets a clean "does not exist", never a timeout); a known name without the asked type gets
an empty NOERROR answer. Answers too big for UDP are truncated (TC), so the resolver asks again
over TCP, as RFC 1035 §4.2.1 says.
"""

import socketserver
import threading

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

from conftest import free_port

TTL = 300


def _txt_chunks(text: str) -> list[bytes]:
    """A TXT record's character-strings: at most 255 octets each (RFC 1035 §3.3)."""
    raw = text.encode()
    return [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]


class DnsServer:
    def __init__(self, records: dict | None = None, silent: bool = False):
        # silent: a server that takes queries and never answers (a DNS outage).
        self.silent = silent
        self.records: dict[str, list[tuple[str, str]]] = {}
        for name, rrs in (records or {}).items():
            for rr in rrs:
                self.add(name, *rr)
        self.port = free_port()
        self.queries: list[tuple[str, str]] = []
        self.log_queries = False
        self._udp = None
        self._tcp = None

    def add(self, name: str, rdtype: str, text: str):
        self.records.setdefault(name.lower().rstrip("."), []).append((rdtype.upper(), text))

    def remove(self, name: str):
        self.records.pop(name.lower().rstrip("."), None)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def from_zone(cls, text: str) -> "DnsServer":
        """A server answering every record of a zone-file snippet (absolute names)."""
        import dns.zone

        zone = dns.zone.from_text(text, origin=".", check_origin=False, relativize=False)
        server = cls()
        for name, node in zone.nodes.items():
            for rdataset in node.rdatasets:
                rdtype = dns.rdatatype.to_text(rdataset.rdtype)
                for rd in rdataset:
                    value = b"".join(rd.strings).decode() if rdtype == "TXT" else rd.to_text()
                    server.add(name.to_text(), rdtype, value)
        return server

    def answer(self, wire: bytes, max_size: int) -> bytes | None:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        q = query.question[0]
        name = q.name.to_text().lower().rstrip(".")
        rdtype = dns.rdatatype.to_text(q.rdtype)
        self.queries.append((name, rdtype))
        if self.silent:
            return None
        if self.log_queries:
            print(f"query {name} {rdtype}", flush=True)
        known = self.records.get(name)
        if known is None or not any(t == rdtype for t, _ in known):
            # RFC 2308 §3: an SOA in the authority section lets resolvers cache the negative
            # answer (for its MINIMUM, here TTL seconds).
            soa = dns.rrset.from_text(".", TTL, "IN", "SOA", f"ns.test. admin.test. 1 3600 600 86400 {TTL}")
            response.authority.append(soa)
        if known is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            rrset = dns.rrset.RRset(q.name, dns.rdataclass.IN, q.rdtype)
            rrset.ttl = TTL
            for t, text in known:
                if t != rdtype:
                    continue
                if t == "TXT":
                    rd = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, _txt_chunks(text))
                else:
                    rd = dns.rdata.from_text(dns.rdataclass.IN, q.rdtype, text)
                rrset.add(rd)
            if len(rrset):
                response.answer.append(rrset)
        try:
            return response.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            response.answer = []
            response.flags |= dns.flags.TC
            return response.to_wire()

    def start(self) -> "DnsServer":
        outer = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                try:
                    query = dns.message.from_wire(data)
                    size = max(512, query.payload) if query.edns >= 0 else 512
                    out = outer.answer(data, size)
                    if out is not None:
                        sock.sendto(out, self.client_address)
                except Exception:
                    pass

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                f = self.request
                while True:
                    head = f.recv(2)
                    if len(head) < 2:
                        return
                    n = int.from_bytes(head, "big")
                    data = b""
                    while len(data) < n:
                        chunk = f.recv(n - len(data))
                        if not chunk:
                            return
                        data += chunk
                    out = outer.answer(data, 65535)
                    if out is None:
                        return
                    f.sendall(len(out).to_bytes(2, "big") + out)

        class UdpServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
            daemon_threads = True

        class TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._udp = UdpServer(("127.0.0.1", self.port), Udp)
        self._tcp = TcpServer(("127.0.0.1", self.port), Tcp)
        for srv in (self._udp, self._tcp):
            threading.Thread(target=srv.serve_forever, daemon=True).start()
        return self

    def stop(self):
        for srv in (self._udp, self._tcp):
            if srv:
                srv.shutdown()
                srv.server_close()


def reverse_name(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


if __name__ == "__main__":
    # Standalone, for benchmarks: python3 tests/dns_server.py PORT RECORDS.json, where the JSON
    # is {"name": [["TXT", "text"], ...]}; serves until killed.
    import json
    import signal
    import sys

    server = DnsServer(json.load(open(sys.argv[2])))
    server.port = int(sys.argv[1])
    server.log_queries = True
    server.start()
    print(f"dns server on 127.0.0.1:{server.port}", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    server.stop()
