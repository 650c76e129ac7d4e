"""A raw vhost-user frontend (a VMM stand-in) for tests that must misbehave
on purpose: it shares a memfd as "guest memory", sets up one split
virtqueue and lays out descriptor chains by hand, good or hostile. Real
guests in tests are qemu's (tests/helpers/vm.sh); this is for what a
well-behaved driver never sends."""
import os
import select
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbdraw import recvn  # noqa: E402  (the raw clients' socket helpers: one copy)

# vhost-user requests (qemu docs/interop/vhost-user.rst)
GET_FEATURES, SET_FEATURES, SET_OWNER = 1, 2, 3
SET_MEM_TABLE, SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE = 5, 8, 9, 10
GET_VRING_BASE, SET_VRING_KICK, SET_VRING_CALL = 11, 12, 13
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, SET_VRING_ENABLE = 15, 16, 18
GET_CONFIG = 24
GET_INFLIGHT_FD, SET_INFLIGHT_FD = 31, 32
F_PROTOCOL_FEATURES = 1 << 30
F_VERSION_1 = 1 << 32
PF_REPLY_ACK, PF_CONFIG, PF_INFLIGHT = 1 << 3, 1 << 9, 1 << 12
# virtio
DESC_NEXT, DESC_WRITE = 1, 2
T_IN, T_OUT, T_GET_ID = 0, 1, 8
S_OK, S_IOERR, S_UNSUPP = 0, 1, 2
F_BLK_RO = 1 << 5

MEM = 1 << 20
UADDR = 0x7f1200000000          # where this "VMM" says it maps the memory
QSIZE = 16
DESC, AVAIL, USED, DATA = 0x0, 0x1000, 0x2000, 0x10000



class Vmm:
    """One connection to a vhost-user-blk socket with one queue set up."""

    def __init__(self, path, timeout=60):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.memfd = os.memfd_create("guest")
        os.ftruncate(self.memfd, MEM)
        self.kick = os.eventfd(0)
        self.call = os.eventfd(0, os.EFD_NONBLOCK)
        self.avail_idx = 0
        self.used_seen = 0
        self.inflight = None            # (fd, size) once set up with inflight=True

    # --- messages ---
    def send(self, req, payload=b"", fds=()):
        hdr = struct.pack("<III", req, 1, len(payload))
        socket.send_fds(self.s, [hdr + payload], list(fds))

    def reply(self, req):
        req2, flags, size = struct.unpack("<III", recvn(self.s, 12))
        assert req2 == req and flags & 4, f"reply to {req} is {req2}/{flags:#x}"
        return recvn(self.s, size)

    def u64(self, req, v=None, fds=()):
        self.send(req, b"" if v is None else struct.pack("<Q", v), fds)

    def reconnect(self, path, timeout=60):
        """A new connection (after the backend restarted) keeping the
        guest memory, the rings and the inflight region, as a VMM does."""
        self.s.close()
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        self.s.connect(path)
        return self

    def inflight_pending(self, head):
        """Does the inflight region mark head as taken and not completed?"""
        return os.pread(self.inflight[0], 1, 16 + 16 * head) == b"\x01"

    def setup(self, inflight=False):
        self.u64(GET_FEATURES)
        self.features = struct.unpack("<Q", self.reply(GET_FEATURES))[0]
        assert self.features & F_PROTOCOL_FEATURES and self.features & F_VERSION_1
        self.u64(SET_FEATURES, F_VERSION_1 | F_PROTOCOL_FEATURES)
        self.u64(GET_PROTOCOL_FEATURES)
        pf = struct.unpack("<Q", self.reply(GET_PROTOCOL_FEATURES))[0]
        self.u64(SET_PROTOCOL_FEATURES, pf & (PF_CONFIG | (PF_INFLIGHT if inflight else 0)))
        self.send(SET_OWNER)
        self.send(SET_MEM_TABLE, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, MEM, UADDR, 0), [self.memfd])
        if inflight and not self.inflight:
            self.send(GET_INFLIGHT_FD, struct.pack("<QQHHxxxx", 0, 0, 1, QSIZE))
            hdr, fds, _, _ = socket.recv_fds(self.s, 12, 1)
            size = struct.unpack("<III", hdr)[2]
            payload = recvn(self.s, size)
            assert len(fds) == 1, "GET_INFLIGHT_FD without a descriptor"
            self.inflight = (fds[0], struct.unpack_from("<Q", payload)[0])
        if inflight:
            self.send(SET_INFLIGHT_FD, struct.pack("<QQHHxxxx", self.inflight[1], 0, 1, QSIZE), [self.inflight[0]])
        self.send(SET_VRING_NUM, struct.pack("<II", 0, QSIZE))
        self.send(SET_VRING_ADDR, struct.pack("<IIQQQQ", 0, 0, UADDR + DESC, UADDR + USED, UADDR + AVAIL, 0))
        self.send(SET_VRING_BASE, struct.pack("<II", 0, 0))
        self.u64(SET_VRING_CALL, 0, [self.call])
        self.u64(SET_VRING_KICK, 0, [self.kick])
        self.send(SET_VRING_ENABLE, struct.pack("<II", 0, 1))
        return self

    def config(self):
        self.send(GET_CONFIG, struct.pack("<III", 0, 60, 0) + bytes(60))
        p = self.reply(GET_CONFIG)
        return p[12:]

    # --- guest memory ---
    def poke(self, off, data):
        os.pwrite(self.memfd, data, off)

    def peek(self, off, n):
        return os.pread(self.memfd, n, off)

    def desc(self, i, addr, length, flags=0, nxt=0):
        self.poke(DESC + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def offer(self, head):
        self.poke(AVAIL + 4 + 2 * (self.avail_idx % QSIZE), struct.pack("<H", head))
        self.avail_idx += 1
        self.poke(AVAIL + 2, struct.pack("<H", self.avail_idx & 0xffff))
        os.eventfd_write(self.kick, 1)

    def used_idx(self):
        return struct.unpack("<H", self.peek(USED + 2, 2))[0]

    def wait_used(self, timeout=60):
        """Until the used index moves (a hang detector, not a window)."""
        while self.used_idx() == self.used_seen:
            r, _, _ = select.select([self.call], [], [], timeout)
            assert r, "no completion"
            os.eventfd_read(self.call)
        self.used_seen += 1
        return struct.unpack("<II", self.peek(USED + 4 + 8 * ((self.used_seen - 1) % QSIZE), 8))

    # --- virtio-blk requests: header at DATA, data at DATA+0x1000, status at DATA+0x100 ---
    def start(self, typ, sector, nbytes=0, payload=None):
        """Lay out one request (descriptors from 0) and offer it."""
        self.poke(DATA, struct.pack("<IIQ", typ, 0, sector))
        self.poke(DATA + 0x100, b"\xff")
        if payload is not None:
            self.poke(DATA + 0x1000, payload)
            nbytes = len(payload)
        data_flags = DESC_NEXT | (0 if payload is not None else DESC_WRITE)
        self.desc(0, DATA, 16, DESC_NEXT, 1)
        if nbytes:
            self.desc(1, DATA + 0x1000, nbytes, data_flags, 2)
            self.desc(2, DATA + 0x100, 1, DESC_WRITE)
        else:
            self.desc(1, DATA + 0x100, 1, DESC_WRITE)
        self.offer(0)

    def finish(self, nbytes=0):
        """Wait for the request start() offered: (status, data)."""
        head, _ = self.wait_used()
        assert head == 0, f"completed head {head}"
        return self.peek(DATA + 0x100, 1)[0], self.peek(DATA + 0x1000, nbytes)

    def request(self, typ, sector, nbytes=0, payload=None):
        """One request, offered and waited for: (status, data)."""
        self.start(typ, sector, nbytes, payload)
        return self.finish(len(payload) if payload is not None else nbytes)

    def closed(self):
        """The backend hung up (within the socket's timeout)."""
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()
        for fd in (self.memfd, self.kick, self.call) + ((self.inflight[0],) if self.inflight else ()):
            os.close(fd)
