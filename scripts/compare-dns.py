#!/usr/bin/env python3
"""Asks two DNS servers the same questions and prints where their answers differ, field by field:
RCODE, flags, each section's records (owner, TTL, class, type, data; names compared without case,
order ignored), the answer section's owners as sent (the question's case), and EDNS. Used to hold etcd-dns's answers to Knot's (the reference), e.g.

    scripts/compare-dns.py 127.0.0.1:5399 127.0.0.1:5300 static.test. NAMES...

Each NAME is `name[/TYPE][/do][/tcp]`; a name without a dot at the end is taken under the zone.
Needs dnspython (`pip install dnspython`). Exit status 1 when any answer differs."""

import sys

import dns.flags
import dns.message
import dns.query
import dns.rdatatype


def server(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def ask(where, name, rdtype, dnssec, tcp):
    query = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=dnssec, payload=1232)
    query.flags &= ~dns.flags.RD
    host, port = where
    if tcp:
        return dns.query.tcp(query, host, port=port, timeout=2)
    return dns.query.udp(query, host, port=port, timeout=2)


def section(records):
    out = []
    for rrset in records:
        for rdata in rrset:
            out.append(f"{str(rrset.name).lower()} {rrset.ttl} {dns.rdataclass.to_text(rrset.rdclass)} "
                       f"{dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text().lower()}")
    return sorted(out)


def fields(reply):
    return {
        "rcode": dns.rcode.to_text(reply.rcode()),
        "flags": dns.flags.to_text(reply.flags),
        "answer": section(reply.answer),
        "answer owners": sorted(str(rrset.name) for rrset in reply.answer),
        "authority": section(reply.authority),
        "additional": section(reply.additional),
        "edns": (reply.edns, reply.payload, dns.flags.edns_to_text(reply.ednsflags)),
    }


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    reference, ours, zone = server(sys.argv[1]), server(sys.argv[2]), sys.argv[3]
    differ = 0
    for spec in sys.argv[4:]:
        parts = spec.split("/")
        name = parts[0] if parts[0].endswith(".") else f"{parts[0]}.{zone}"
        rdtype = next((p for p in parts[1:] if p not in ("do", "tcp")), "A")
        dnssec, tcp = "do" in parts[1:], "tcp" in parts[1:]
        got = [fields(ask(where, name, rdtype, dnssec, tcp)) for where in (reference, ours)]
        diff = [key for key in got[0] if got[0][key] != got[1][key]]
        if diff:
            differ += 1
            print(f"DIFF {spec}:")
            for key in diff:
                print(f"  {key}:\n    reference {got[0][key]}\n    ours      {got[1][key]}")
        else:
            print(f"same {spec}: {got[0]['rcode']} {got[0]['flags']} answer {len(got[0]['answer'])}"
                  f" authority {len(got[0]['authority'])} additional {len(got[0]['additional'])}")
    print(f"{differ} of {len(sys.argv) - 4} differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
