#!/usr/bin/env python3
"""A writer with a model, through blockd being killed and restarted.

qemu-io (qemu's NBD client with reconnect-delay) writes 4 KiB blocks of one
byte value each, some with FUA, and flushes; between and during its requests
blockd is killed with SIGKILL and started again. qemu resends what was in
flight once it has reconnected, so the writer must never see an error. The
model knows which writes are durable: a write sent and answered before a
FLUSH that was sent and answered with no kill in between (or a FUA write
with no kill between its sending and its answer). After each cycle the
whole region is read back through a second NBD connection (nbdcopy) and
every block must hold its last durable value or a value written after it.

Usage: restart-writer.py --blockd JSON_ARGV --pidfile P --attach SHELL_CMD
       --qemu-opts OPTS --uri URI --cycles N --blocks N --out DIR
Every fifth cycle stops blockd with SIGTERM instead (a clean stop, as an
upgrade does). Prints "cycles=C kills=K terms=S writes=W flushed_writes=F
checks=X lost=0" (checks: blocks whose one allowed value was verified).
"""
import argparse
import json
import os
import random
import select
import signal
import subprocess
import sys
import time

BS = 4096
PROMPT = b"qemu-io> "


class Failure(Exception):
    pass


class Blockd:
    def __init__(self, argv, pidfile, log):
        self.argv, self.pidfile, self.log = argv, pidfile, log
        self.proc = None

    def start(self):
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        self.proc = subprocess.Popen(self.argv + ["--pidfile", self.pidfile], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        # Ready once the pidfile appears (every socket listens by then).
        deadline = time.monotonic() + 60
        while not (os.path.exists(self.pidfile) and os.path.getsize(self.pidfile) > 0):
            if self.proc.poll() is not None:
                raise Failure(f"blockd exited during startup with {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise Failure("blockd did not become ready in 60 s")
            time.sleep(0.01)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        if rc != 0:
            raise Failure(f"blockd exited with {rc} after SIGTERM")


class QemuIO:
    def __init__(self, opts, log):
        self.log = log
        self.p = subprocess.Popen(["qemu-io", "--image-opts", opts], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.buf = b""
        self.wait()

    def send(self, cmd):
        self.log.write(f"> {cmd}\n")
        self.p.stdin.write((cmd + "\n").encode())
        self.p.stdin.flush()

    def wait(self, timeout=300):
        """Output up to the next prompt: the command before it is done."""
        deadline = time.monotonic() + timeout
        while PROMPT not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"qemu-io did not answer in {timeout} s")
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    raise Failure(f"qemu-io exited: {self.buf.decode(errors='replace')}")
                self.buf += chunk
        out, self.buf = self.buf.split(PROMPT, 1)
        text = out.decode(errors="replace")
        self.log.write(text)
        if "failed" in text or "error" in text.lower():
            raise Failure(f"the writer saw an error: {text.strip()}")
        return text

    def close(self):
        self.send("quit")
        self.p.stdin.close()
        self.p.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blockd", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--attach", required=True)
    ap.add_argument("--qemu-opts", required=True)
    ap.add_argument("--uri", required=True)
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--blocks", type=int, default=64)
    ap.add_argument("--ops", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    log = open(os.path.join(a.out, "writer.log"), "w", buffering=1)
    blog = open(os.path.join(a.out, "blockd.log"), "a")
    blockd = Blockd(json.loads(a.blockd), a.pidfile, blog)
    blockd.start()
    subprocess.run(["sh", "-c", a.attach], check=True, stdout=subprocess.DEVNULL)
    q = QemuIO(a.qemu_opts, log)

    epoch = 0                                   # kills so far
    allowed = [{0} for _ in range(a.blocks)]    # values each block may hold now
    unflushed = []                              # (block, value, epoch sent)
    stats = dict(writes=0, flushed_writes=0, checks=0, kills=0, terms=0)
    term_cycle = False

    def kill_and_restart():
        """SIGKILL (or, in every fifth cycle, SIGTERM: a clean stop), start again."""
        nonlocal epoch
        if term_cycle:
            blockd.stop()
            stats["terms"] += 1
        else:
            blockd.kill9()
            stats["kills"] += 1
        epoch += 1
        blockd.start()

    def settle(durable):
        """The writes in unflushed, in order: durable ones pin their block."""
        for b, v, e, fua in unflushed:
            if fua:                             # durable already, counted
                allowed[b] = {v}
            elif durable(e):
                allowed[b] = {v}
                stats["flushed_writes"] += 1
            else:
                allowed[b].add(v)
        unflushed.clear()

    def op(kind, kill):
        sent = epoch
        if kind == "flush":
            q.send("flush")
        else:
            b = rnd.randrange(a.blocks)
            # A value the block cannot hold now, so a lost write shows.
            v = rnd.choice([x for x in range(1, 256) if x not in allowed[b]])
            allowed[b].add(v)
            fua = kind == "fua"
            q.send(f"write {'-f ' if fua else ''}-P {v} {b * BS} {BS}")
            stats["writes"] += 1
        if kill:
            kill_and_restart()
        q.wait()
        if kind == "flush":
            settle(lambda e: e == sent == epoch)
        elif kind == "fua":
            durable = sent == epoch
            if durable:
                allowed[b] = {v}
                stats["flushed_writes"] += 1
            # In order with the others: FUA makes only itself durable.
            unflushed.append((b, v, sent, durable))
        else:
            unflushed.append((b, v, sent, False))

    def check():
        img = os.path.join(a.out, "check.img")
        if os.path.exists(img):
            os.unlink(img)
        subprocess.run(["nbdcopy", a.uri, img], check=True)
        with open(img, "rb") as f:
            data = f.read(a.blocks * BS)
        for b in range(a.blocks):
            blk = data[b * BS:(b + 1) * BS]
            if blk != bytes([blk[0]]) * BS or blk[0] not in allowed[b]:
                raise Failure(f"block {b} holds {blk[:8].hex()}..., allowed {sorted(allowed[b])}: "
                              "a flushed write was lost")
            stats["checks"] += len(allowed[b]) == 1

    for cycle in range(a.cycles):
        term_cycle = cycle % 5 == 4
        kill_at = rnd.randrange(a.ops + 1)      # a.ops: kill between cycles' ops, none in flight
        for i in range(a.ops):
            kind = rnd.choice(["write", "write", "write", "fua", "flush"])
            if i == kill_at == 0:
                kill_and_restart()
            op(kind, kill=(i == kill_at and i > 0))
        if kill_at == a.ops:
            kill_and_restart()
        op("flush", kill=False)                 # everything since the kill is durable now
        check()
        log.write(f"cycle {cycle + 1}: {stats}\n")
    q.close()
    blockd.stop()
    print("cycles={} kills={} terms={} writes={} flushed_writes={} checks={} lost=0".format(
        a.cycles, stats["kills"], stats["terms"], stats["writes"], stats["flushed_writes"], stats["checks"]))


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
