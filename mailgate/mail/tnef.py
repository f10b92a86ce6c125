"""The files inside a `winmail.dat` (application/ms-tnef): Outlook's own container, which
other mail clients show as one opaque attachment. Unpacked with `tnefparse`; the .dat
itself is kept by the caller too. Outlook may put the message text only in there, often
only as compressed RTF: that is decompressed with `compressed_rtf` (tnefparse's own
optional helper) and turned into text with `striprtf` (small, pure Python, maintained;
RTF is too large a format to strip well by hand). Pure; never raises (hostile input gives
a defect).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from mailgate.mail.charsets import decode_text

MAX_FILES = 100
TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")

# tnefparse logs every odd object at WARNING; the defect we return says it once.
logging.getLogger("tnefparse").setLevel(logging.ERROR)


def is_tnef(content_type: str, filename: str, data: bytes) -> bool:
    return (content_type.lower() in TNEF_TYPES or filename.lower() == "winmail.dat") \
        and data[:4] == b"\x78\x9f\x3e\x22"


@dataclass
class Unpacked:
    files: list[tuple[str, bytes]] = field(default_factory=list)
    defect: str = ""
    text: str = ""                # the message text inside, if any
    html: str = ""                # its HTML body, if it has one and no plain text


def unpack_tnef(data: bytes) -> tuple[list[tuple[str, bytes]], str]:
    """([(file name, bytes)], defect): the attachments inside a TNEF container."""
    got = read_tnef(data)
    return got.files, got.defect


def read_tnef(data: bytes) -> Unpacked:
    """The attachments and the message text inside a TNEF container."""
    from tnefparse import TNEF  # imported late: only for winmail.dat

    try:
        tnef = TNEF(data, do_checksum=False)
        out = Unpacked()
        for n, attachment in enumerate(tnef.attachments[:MAX_FILES], start=1):
            name = attachment.long_filename() or attachment.name
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            out.files.append((str(name).strip("\x00") or f"winmail-{n}.bin",
                              bytes(attachment.data or b"")))
    except Exception as exc:
        return Unpacked(defect=f"winmail.dat could not be unpacked ({type(exc).__name__})")
    try:
        out.text, out.html = _body(tnef)
    except Exception as exc:          # a broken body still leaves the files
        out.defect = f"the text inside winmail.dat could not be read ({type(exc).__name__})"
    return out


def _body(tnef) -> tuple[str, str]:
    """(plain text, HTML) of the message inside: its plain body, else its HTML body, else
    the text of its RTF body."""
    if tnef.body:
        return _str(tnef.body), ""
    if tnef.htmlbody:
        return "", _str(tnef.htmlbody)
    if not tnef._rtfbody:          # tnefparse keeps it compressed until asked
        return "", ""
    from compressed_rtf import decompress
    from striprtf.striprtf import rtf_to_text

    # RTF is 7-bit text whose other characters are escapes (\'fc, \u252?): latin-1 maps
    # its bytes one to one; striprtf decodes the escapes by the RTF's code page
    rtf = decompress(bytes(tnef._rtfbody)).decode("latin-1")
    return rtf_to_text(rtf, errors="replace").strip("\x00"), ""


def _str(value) -> str:
    if isinstance(value, bytes):      # a body without a code page: Outlook's ANSI default
        return decode_text(value, "windows-1252", "")[0]
    return str(value)
