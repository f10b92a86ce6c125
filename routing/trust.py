"""Is the From of a mail vouched for by our own MTA? Pure functions over header pairs.

Only `Authentication-Results` headers whose authserv-id is the one configured for our
own MTA count, and of those only the topmost (the one our MTA added last); anything the
sender wrote further down, or with another id, is ignored (RFC 8601 §5). The From domain
passes when DMARC passed for it, or a DKIM signature of it (or of a parent domain,
relaxed alignment) verified.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_RESULT = re.compile(r"\b(dkim|dmarc|spf)\s*=\s*([a-z]+)([^;]*)", re.IGNORECASE)
_PROP = re.compile(r"\b(header\.d|header\.i|header\.from)\s*=\s*([^\s;()]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    checked: bool = True      # False: nothing was configured to check the From

    @classmethod
    def unchecked(cls) -> Verdict:
        return cls(True, "not checked", checked=False)


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment: the same domain, or one is a subdomain of the other."""
    domain, from_domain = domain.lower().strip("."), from_domain.lower().strip(".")
    return "." in domain and (from_domain == domain or from_domain.endswith("." + domain)
                             or domain.endswith("." + from_domain))


def sender_verified(headers: Sequence[tuple[str, str]], *, authserv_id: str,
                    from_domain: str) -> Verdict:
    ours = [v for k, v in headers if k.lower() == "authentication-results"
            and v.strip().split(";", 1)[0].split()[0:1] == [authserv_id]]
    if not ours:
        return Verdict(False, f"no Authentication-Results from {authserv_id}")
    found: list[str] = []
    for method, result, rest in _RESULT.findall(ours[0]):
        method, result = method.lower(), result.lower()
        props = {k.lower(): v.strip("<>").split("@")[-1] for k, v in _PROP.findall(rest)}
        found.append(f"{method}={result}")
        if result != "pass":
            continue
        if method == "dmarc" and aligned(props.get("header.from", ""), from_domain):
            return Verdict(True, f"dmarc=pass for {from_domain}")
        if method == "dkim" and aligned(props.get("header.d", props.get("header.i", "")),
                                         from_domain):
            return Verdict(True, f"dkim=pass for {from_domain}")
    return Verdict(False, f"{authserv_id} did not see DKIM or DMARC pass for {from_domain} "
                          f"({', '.join(found) or 'no results'})")
