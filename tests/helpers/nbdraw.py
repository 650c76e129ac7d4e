"""A raw NBD client for tests that need to misbehave on purpose (never read
replies, dribble the handshake, hold connections across a stop). Normal
clients in tests are libnbd's tools; this is for what they cannot do."""
import socket
import struct

IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x3e889045565a9
REQUEST_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
CHUNK_MAGIC = 0x668e33ef
OPT_GO, OPT_SR = 7, 8
CMD_READ, CMD_DISC = 0, 2


class NbdError(Exception):
    """The server answered a request with an error."""


def connect(addr, timeout=60):
    """addr: a Unix socket path, or (host, port)."""
    s = socket.socket(socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET)
    s.settimeout(timeout)
    s.connect(addr)
    return s


def recvn(s, n):
    b = bytearray()
    while len(b) < n:
        x = s.recv(n - len(b))
        if not x:
            raise EOFError(f"closed after {len(b)} of {n} bytes")
        b += x
    return bytes(b)


def closed(s):
    """The server hung up (EOF or reset) within the socket's timeout."""
    try:
        while True:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def greet(s, flags=3):
    g = recvn(s, 18)
    assert g[:8] == b"NBDMAGIC" and g[8:16] == b"IHAVEOPT", g
    s.sendall(struct.pack(">I", flags))


def opt(s, o, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)


def opt_reply(s):
    magic, o, typ, ln = struct.unpack(">QIII", recvn(s, 20))
    assert magic == OPT_REPLY_MAGIC, hex(magic)
    return o, typ, recvn(s, ln)


def go(s, name):
    """OPT_GO (simple replies). Returns the export size."""
    n = name.encode()
    opt(s, OPT_GO, struct.pack(">I", len(n)) + n + struct.pack(">H", 0))
    size = None
    while True:
        _, typ, data = opt_reply(s)
        if typ == 3 and struct.unpack(">H", data[:2])[0] == 0:
            size = struct.unpack(">Q", data[2:10])[0]
        elif typ == 1:
            return size
        else:
            raise AssertionError(f"GO failed: {typ:#x} {data!r}")


def handshake(addr, name, timeout=60):
    s = connect(addr, timeout)
    greet(s)
    return s, go(s, name)


def request(s, typ, off, ln, handle=1, flags=0):
    s.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, flags, typ, handle, off, ln))


def read(s, off, ln, handle=1):
    """One READ with a simple reply: the data (NbdError on an error reply)."""
    request(s, CMD_READ, off, ln, handle)
    magic, err, h = struct.unpack(">IIQ", recvn(s, 16))
    assert magic == SIMPLE_MAGIC and h == handle, (hex(magic), h)
    if err:
        raise NbdError(err)
    return recvn(s, ln)
