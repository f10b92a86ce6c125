"""Our own DKIM check, for sites without a trusted upstream MTA (dkimpy; DNS at the edge).

Used only to decide whether mail commands may run: a signature that verifies and whose
d= domain aligns with the From domain vouches for the sender. Runs before the database
unit of work opens, so a slow DNS answer never holds a lock.
"""

from __future__ import annotations

from routing.trust import Verdict, aligned

MAX_SIGNATURES = 3


def dkim_verified(raw: bytes, from_domain: str, *, dnsfunc=None, timeout: float = 5.0
                  ) -> Verdict:
    if not from_domain:
        return Verdict(False, "no From domain to check")
    end = raw.find(b"\r\n\r\n")                  # the header ends at the first blank line
    end = len(raw) if end < 0 else end             # (found in place: split() would copy
    blank = raw.find(b"\n\n", 0, end)              # the whole mail to look at its head)
    head = raw[:end if blank < 0 else blank].lower()
    count = head.count(b"\ndkim-signature:") + head.startswith(b"dkim-signature:")
    if count == 0:
        return Verdict(False, "the mail has no DKIM signature")
    import dkim  # imported here: dkimpy with dnspython is ~2 MB resident per process

    checker = dkim.DKIM(raw, timeout=timeout)
    seen: list[str] = []
    for idx in range(min(count, MAX_SIGNATURES)):
        try:
            ok = checker.verify(idx=idx, dnsfunc=dnsfunc) if dnsfunc else checker.verify(idx=idx)
        except (dkim.DKIMException, OSError, ValueError) as exc:
            seen.append(f"signature {idx + 1}: {type(exc).__name__}")
            continue
        domain = (checker.domain or b"").decode("ascii", "replace")
        if ok and aligned(domain, from_domain):
            return Verdict(True, f"dkim=pass for {from_domain} (own check, d={domain})")
        seen.append(f"d={domain}: {'pass, not aligned' if ok else 'fail'}")
    return Verdict(False, "own DKIM check failed: " + "; ".join(seen))
