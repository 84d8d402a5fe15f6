#!/usr/bin/env python3
"""Verify the X-SMTP-Connector-Signature of a message (doc/signatures.md).

    SMTP_CONNECTOR_SECRET_KEY=... python3 verify_signature.py < message.eml

Standard library only, for receivers without the smtp-connector binary.
Prints "valid: ..." and exits 0, or "invalid: <reason>" and exits 1; 2 when
there is no key. The same rules as `smtp-connector verify`, in short.
"""
import base64, hashlib, hmac, os, re, sys

NAMES = ["from", "to", "cc", "subject", "date", "message-id"]
SIG = "x-smtp-connector-signature"


def split(raw):
    """Header fields [(name, unfolded value)] and the body, bare LF as CRLF."""
    raw = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
    if raw.startswith(b"\r\n"):
        head, body = b"", raw[2:]
    else:
        head, _, body = raw.partition(b"\r\n\r\n")
    fields = []
    for line in re.split(rb"\r\n(?![ \t])", head):
        name, colon, value = line.partition(b":")
        if colon and name[:1] not in (b" ", b"\t") and b"\n" not in name:
            value = value.replace(b"\r", b"").replace(b"\n", b"").strip(b" \t")
            fields.append((name.rstrip(b" \t").decode("latin-1").lower(), value))
    return fields, body


def simple_body(body):
    """DKIM "simple" body canonicalisation (RFC 6376 3.4.3)."""
    while body.endswith(b"\r\n"):
        body = body[:-2]
    return body + b"\r\n"


def verify(raw, key):
    """(True, "valid: ...") or (False, reason)."""
    fields, body = split(raw)
    values = {}
    for name, value in fields:
        values.setdefault(name, []).append(value)
    sigs = values.get(SIG, [])
    if len(sigs) != 1:
        return False, "no signature header" if not sigs else "more than one signature header"
    tags = {}
    for part in re.sub(rb"[ \t\r\n]", b"", sigs[0]).decode("latin-1").split(";"):
        if part:
            name, eq, value = part.partition("=")
            if not eq or name in tags or name not in ("v", "a", "t", "bh", "h", "hh", "b"):
                return False, f"malformed tag {name!r}"
            tags[name] = value
    v = tags.get("v")
    if v not in ("1", "2"):
        return False, f"unknown signature version {v!r}"
    if tags.get("a", "").lower() != "hmac-sha256" or "h" not in tags or "b" not in tags:
        return False, "malformed tag 'a', 'h' or 'b'"
    names = [n.lower() for n in tags["h"].split(":")]
    if any(n not in NAMES for n in names) or len(set(names)) != len(names):
        return False, "malformed tag 'h'"
    for n in names:
        if len(values.get(n, [])) != 1:
            return False, f"header changed: {n!r} missing or repeated"
    lines = [n.encode() + b":" + values[n][0] + b"\r\n" for n in names]
    data = b"".join(lines)
    if v == "1":
        mac = base64.b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode()
        if hmac.compare_digest(mac.encode(), tags["b"].encode("latin-1")):
            return True, "valid: v=1 (headers only)"
        return False, "HMAC mismatch"
    for t in ("t", "bh", "hh"):
        if t not in tags:
            return False, f"malformed tag {t!r}: missing"
    for n in NAMES:
        if n not in names and n in values:
            return False, f"header changed: {n!r} added after signing"
    data += ("x-smtp-connector-signature:v=2; a=hmac-sha256; t=%s; bh=%s; h=%s; hh=%s; b="
             % (tags["t"], tags["bh"], ":".join(names), tags["hh"])).encode()
    mac = hmac.new(key, data, hashlib.sha256).hexdigest()
    bh = base64.b64encode(hashlib.sha256(simple_body(body)).digest()).decode()
    changed = [n for n, line, hh in zip(names, lines, tags["hh"].split(":"))
               if hashlib.sha256(line).hexdigest()[:8] != hh]
    body_ok = hmac.compare_digest(bh.encode(), tags["bh"].encode("latin-1"))
    if hmac.compare_digest(mac.encode(), tags["b"].lower().encode("latin-1")) and body_ok:
        return True, "valid: v=2, t=" + tags["t"]
    why = ["header changed: " + ", ".join(changed)] if changed else []
    why += [] if body_ok else ["body changed (bh mismatch)"]
    return False, "; ".join(why) or "HMAC mismatch"


if __name__ == "__main__":
    key = os.environ.get("SMTP_CONNECTOR_SECRET_KEY")
    if not key:
        print("set SMTP_CONNECTOR_SECRET_KEY to the sender's secret_key", file=sys.stderr)
        sys.exit(2)
    ok, why = verify(sys.stdin.buffer.read(), key.encode())
    print(why if ok else "invalid: " + why)
    sys.exit(0 if ok else 1)
