"""`newsletter check --domain`: the From domain's SPF, DKIM and DMARC records, read from DNS.

Gmail and Yahoo require of bulk senders an SPF or DKIM pass aligned with the
From domain, and a DMARC record. This reads the three TXT records with
dnspython (the resolver is the system's, or `[check] nameservers`) and says,
for each, what is wrong and what to publish:

- SPF (``v=spf1`` at the domain): exactly one record, ending in ``~all`` or
  ``-all``; ``+all`` lets anyone send as the domain;
- DKIM (``<selector>._domainkey.<domain>``, the selector from ``[dkim]``): a
  key is published, not revoked (empty ``p=``), and is the public half of our
  private key file; dkimpy parses the record;
- DMARC (``_dmarc.<domain>``): exactly one record with a policy; ``p=none``
  only monitors, which is a start, not the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import dkim.util
import dns.exception
import dns.nameserver
import dns.resolver

from newsletter.app import Newsletter
from newsletter.checks.findings import ERROR, WARNING, Finding
from newsletter.config import Config
from newsletter.dkim import dns_record, read_private_key
from newsletter.errors import ConfigError, InputError, OperationFailed


@dataclass(frozen=True)
class DomainReport:
    domain: str
    # The records found (several joined by " | "), empty when none.
    spf: str
    dkim: str
    dmarc: str
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        return sum(1 for finding in self.findings if finding.severity == ERROR)


def check_domain(app: Newsletter, domain: str | None = None) -> DomainReport:
    """The findings on `domain`'s records (default: the From address's domain)."""
    config = app.config
    domain = (domain or config.mail.from_address.rpartition("@")[2]).strip().rstrip(".").lower()
    if not domain or " " in domain or "." not in domain:
        raise InputError(f"--domain {domain!r} is not a domain name")
    resolver = make_resolver(config)
    findings: list[Finding] = []

    spf = [r for r in txt(resolver, domain) if r.lower().startswith("v=spf1")]
    findings += _spf_findings(domain, spf)

    dkim_records: list[str] = []
    if not config.dkim.selector:
        findings.append(
            Finding(
                ERROR,
                "dkim-not-configured",
                "no [dkim] selector in the config, so no DKIM record to look for: run "
                "`newsletter dkim keygen`, publish its record and set [dkim]",
            )
        )
    else:
        name = f"{config.dkim.selector}._domainkey.{domain}"
        dkim_records = txt(resolver, name)
        findings += _dkim_findings(config, domain, name, dkim_records)

    dmarc = [r for r in txt(resolver, f"_dmarc.{domain}") if r.lower().startswith("v=dmarc1")]
    findings += _dmarc_findings(domain, dmarc)
    return DomainReport(
        domain=domain,
        spf=" | ".join(spf),
        dkim=" | ".join(dkim_records),
        dmarc=" | ".join(dmarc),
        findings=tuple(findings),
    )


def make_resolver(config: Config) -> dns.resolver.Resolver:
    """The system's resolver, or the servers in [check] nameservers."""
    servers = config.check.nameservers
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [_nameserver(config, entry) for entry in servers]
    resolver.lifetime = config.check.timeout_seconds
    resolver.timeout = config.check.timeout_seconds
    return resolver


def txt(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """The TXT records at `name`, each one string (its pieces joined); [] when none."""
    try:
        answer = resolver.resolve(name, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise OperationFailed(f"DNS did not answer for {name}: {exc}") from None
    return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]


def _spf_findings(domain: str, records: list[str]) -> list[Finding]:
    if not records:
        return [
            Finding(
                ERROR,
                "no-spf",
                f'no SPF record at {domain}: publish TXT "v=spf1 mx ~all" there (add '
                "include:<your relay's domain> for a relay)",
            )
        ]
    if len(records) > 1:
        return [
            Finding(
                ERROR,
                "spf-several",
                f"{len(records)} SPF records at {domain}: receivers treat that as an "
                "error (RFC 7208); merge them into one",
            )
        ]
    terms = records[0].lower().split()
    last = terms[-1] if terms else ""
    if last in ("+all", "all"):
        return [
            Finding(
                ERROR,
                "spf-pass-all",
                f"the SPF record of {domain} ends in {last}: anyone may send as {domain}; "
                "end it with ~all or -all",
            )
        ]
    if last not in ("~all", "-all") and not any(t.startswith("redirect=") for t in terms):
        return [
            Finding(
                WARNING,
                "spf-neutral",
                f"the SPF record of {domain} does not end in ~all or -all, so it "
                "protects nothing; end it with ~all",
            )
        ]
    return []


def _dkim_findings(config: Config, domain: str, name: str, records: list[str]) -> list[Finding]:
    expected = ""
    if config.dkim.private_key_file and config.dkim.domain:
        key = read_private_key(config.resolve_path(config.dkim.private_key_file))
        expected = dns_record(domain, config.dkim.selector, key).value
    publish = f': publish TXT "{expected}" there' if expected else ""
    if not records:
        return [Finding(ERROR, "no-dkim-record", f"no DKIM record at {name}{publish}")]
    if len(records) > 1:
        return [Finding(ERROR, "dkim-several", f"{len(records)} TXT records at {name}; keep one")]
    try:
        tags = dkim.util.parse_tag_value(records[0].encode())
    except dkim.util.InvalidTagValueList as exc:
        return [Finding(ERROR, "dkim-unreadable", f"the DKIM record at {name} is not valid: {exc}")]
    published = b"".join(tags.get(b"p", b"").split())
    if not published:
        return [Finding(ERROR, "dkim-revoked", f"the DKIM key at {name} is revoked (empty p=)")]
    if expected and published.decode("ascii", "replace") != expected.rpartition("p=")[2]:
        return [
            Finding(
                ERROR,
                "dkim-other-key",
                f"the DKIM key at {name} is not the public half of "
                f"{config.dkim.private_key_file}: signatures will fail{publish}",
            )
        ]
    return []


def _dmarc_findings(domain: str, records: list[str]) -> list[Finding]:
    name = f"_dmarc.{domain}"
    if not records:
        return [
            Finding(
                ERROR,
                "no-dmarc",
                f'no DMARC record at {name}: publish TXT "v=DMARC1; p=none; '
                f'rua=mailto:dmarc@{domain}" there (Gmail and Yahoo require one of bulk '
                "senders)",
            )
        ]
    if len(records) > 1:
        return [
            Finding(ERROR, "dmarc-several", f"{len(records)} DMARC records at {name}; keep one")
        ]
    tags = {}
    for part in records[0].split(";"):
        key, _, value = part.partition("=")
        tags[key.strip().lower()] = value.strip().lower()
    policy = tags.get("p", "")
    if policy not in ("none", "quarantine", "reject"):
        return [
            Finding(
                ERROR,
                "dmarc-no-policy",
                f"the DMARC record at {name} has no valid p= policy; add p=none to start",
            )
        ]
    if policy == "none":
        return [
            Finding(
                WARNING,
                "dmarc-none",
                f"the DMARC policy of {domain} is p=none (monitoring only); move to "
                "p=quarantine once the reports show only your own mail",
            )
        ]
    return []


def _nameserver(config: Config, entry: str) -> dns.nameserver.Nameserver:
    host, port = entry, 53
    if entry.count(":") == 1:
        host, _, number = entry.partition(":")
        if not number.isdigit():
            raise ConfigError(f"{config.source}: check.nameservers: {entry!r} has a bad port")
        port = int(number)
    elif entry.startswith("[") and "]:" in entry:
        host, _, number = entry[1:].partition("]:")
        if not number.isdigit():
            raise ConfigError(f"{config.source}: check.nameservers: {entry!r} has a bad port")
        port = int(number)
    return dns.nameserver.Do53Nameserver(host, port)
