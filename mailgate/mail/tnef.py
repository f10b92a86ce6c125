"""The files inside a `winmail.dat` (application/ms-tnef): Outlook's own container, which
other mail clients show as one opaque attachment. Unpacked with `tnefparse`; the .dat
itself is kept by the caller too. Pure; never raises (hostile input gives a defect).
"""

from __future__ import annotations

import logging

MAX_FILES = 100
TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")

# tnefparse logs every odd object at WARNING; the defect we return says it once.
logging.getLogger("tnefparse").setLevel(logging.ERROR)


def is_tnef(content_type: str, filename: str, data: bytes) -> bool:
    return (content_type.lower() in TNEF_TYPES or filename.lower() == "winmail.dat") \
        and data[:4] == b"\x78\x9f\x3e\x22"


def unpack_tnef(data: bytes) -> tuple[list[tuple[str, bytes]], str]:
    """([(file name, bytes)], defect): the attachments inside a TNEF container."""
    from tnefparse import TNEF  # imported late: only for winmail.dat

    try:
        tnef = TNEF(data, do_checksum=False)
        files = []
        for n, attachment in enumerate(tnef.attachments[:MAX_FILES], start=1):
            name = attachment.long_filename() or attachment.name
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            files.append((str(name).strip("\x00") or f"winmail-{n}.bin",
                          bytes(attachment.data or b"")))
    except Exception as exc:
        return [], f"winmail.dat could not be unpacked ({type(exc).__name__})"
    return files, ""
