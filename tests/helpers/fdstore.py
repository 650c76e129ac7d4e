#!/usr/bin/env python3
"""The part of systemd's service manager that blockd's restarts rely on,
for tests on machines without systemd as PID 1: a NOTIFY_SOCKET that
takes sd_notify messages (READY, RELOADING, STOPPING, STATUS) and the fd
store (FDSTORE=1 with FDNAME and the fds), and starts blockd with the
stored fds passed as systemd passes them (LISTEN_FDS, LISTEN_FDNAMES,
LISTEN_PID), its stderr a file named by JOURNAL_STREAM as the journal's
would be.

    fdstore.py --dir D [--progress FILE] -- BLOCKD ARGS...

Commands, one per line on the FIFO D/cmd; each ends with "done CMD" in
D/events, where every notification and event is logged one per line:
    restart TERM|KILL    stop blockd with the signal, start a new one with
                         the stored fds, wait for READY=1
    drop-restart         the same (TERM), but the stored fds are closed
                         first, as a manager without an fd store would
    hup                  SIGHUP, wait for READY=1 after RELOADING=1
    stop                 SIGTERM, wait, exit
While blockd is down in a restart, the helper waits until the client
loop (--progress: lines "start K", then "ok K", "refused K" or "error K")
has an attempt under way ("gap-attempt K" in events: it waits in the
backlog of the socket the helper holds); in drop-restart until one was
refused ("gap-refusal K"). Every wait is
bounded (60 s); on a timeout "timeout ..." is logged and the test fails.
"""
import argparse
import array
import os
import signal
import socket
import sys
import threading
import time

LIMIT_S = 60

ap = argparse.ArgumentParser()
ap.add_argument("--dir", required=True)
ap.add_argument("--progress")
ap.add_argument("argv", nargs=argparse.REMAINDER)
args = ap.parse_args()
argv = args.argv[1:] if args.argv and args.argv[0] == "--" else args.argv

events_lock = threading.Lock()
events_cond = threading.Condition(events_lock)
events = []
store = []               # (name, fd)
events_file = open(os.path.join(args.dir, "events"), "a", buffering=1)


def event(line):
    with events_cond:
        events.append(line)
        events_file.write(line + "\n")
        events_cond.notify_all()


def wait_event(pred, since, what):
    deadline = time.monotonic() + LIMIT_S
    with events_cond:
        while not any(pred(e) for e in events[since:]):
            left = deadline - time.monotonic()
            if left <= 0:
                event("timeout waiting for " + what)
                return False
            events_cond.wait(left)
    return True


notify_path = os.path.join(args.dir, "notify.sock")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)


def notify_thread():
    fdsize = array.array("i").itemsize
    while True:
        msg, anc, _, _ = notify.recvmsg(4096, socket.CMSG_SPACE(16 * fdsize))
        fds = array.array("i")
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fdsize)])
        fields = dict(l.split("=", 1) for l in msg.decode().splitlines() if "=" in l)
        if fields.get("FDSTORE") == "1":
            for fd in fds:
                store.append((fields.get("FDNAME", "stored"), fd))
            event("FDSTORE %s %d" % (fields.get("FDNAME", "stored"), len(fds)))
        else:
            for fd in fds:
                os.close(fd)
        for key in ("READY", "RELOADING", "STOPPING"):
            if fields.get(key) == "1":
                event(key + "=1")
        if "STATUS" in fields:
            event("STATUS=" + fields["STATUS"])


threading.Thread(target=notify_thread, daemon=True).start()

log_path = os.path.join(args.dir, "blockd.log")
child = 0
starts = 0


def start():
    global child, starts
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    st = os.fstat(log)
    names = ":".join(n for n, _ in store)
    high = [os.dup(fd) for _, fd in store]
    since = len(events)
    pid = os.fork()
    if pid == 0:
        os.dup2(log, 2)
        os.dup2(log, 1)
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i + 200)
        for i in range(len(high)):
            os.dup2(3 + i + 200, 3 + i)
            os.close(3 + i + 200)
        env = dict(os.environ)
        env.update(NOTIFY_SOCKET=notify_path, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        if high:
            env.update(LISTEN_FDS=str(len(high)), LISTEN_FDNAMES=names, LISTEN_PID=str(os.getpid()))
        os.execve(argv[0], argv, env)
    for fd in high:
        os.close(fd)
    os.close(log)
    child = pid
    starts += 1
    event("start %d pid %d fds %d" % (starts, pid, len(high)))
    return wait_event(lambda e: e == "READY=1", since, "READY=1")


def stop(sig):
    os.kill(child, sig)
    _, status = os.waitpid(child, 0)
    event("exit pid %d status %d" % (child, status))


def progress_lines():
    try:
        with open(args.progress) as f:
            return f.read().splitlines()
    except OSError:
        return []


def wait_gap(what):
    """Wait, blockd down, until the client loop shows what we need:
    gap-attempt, an attempt begun and not finished (it waits in the
    listening socket's backlog, or is about to be refused, which the test
    counts); gap-refusal, an attempt refused since now."""
    base = len(progress_lines())
    deadline = time.monotonic() + LIMIT_S
    while time.monotonic() < deadline:
        lines = progress_lines()
        if what == "gap-attempt" and lines and lines[-1].startswith("start "):
            event("%s %s" % (what, lines[-1].split()[1]))
            return
        for l in lines[base:]:
            if what == "gap-refusal" and l.startswith("refused "):
                event("%s %s" % (what, l.split()[1]))
                return
        time.sleep(0.01)
    event("timeout waiting for " + what)


def on_term(signum, frame):
    """Stopped from outside (the test's cleanup): take blockd along."""
    if child:
        try:
            os.kill(child, signal.SIGTERM)
            os.waitpid(child, 0)
        except OSError:
            pass
    os._exit(1)


signal.signal(signal.SIGTERM, on_term)
if not start():
    sys.exit(1)
cmd_path = os.path.join(args.dir, "cmd")
while True:
    with open(cmd_path) as cmds:
        for line in cmds:
            cmd = line.split()
            if not cmd:
                continue
            if cmd[0] in ("restart", "drop-restart"):
                sig = signal.SIGKILL if cmd[0] == "restart" and cmd[1] == "KILL" else signal.SIGTERM
                stop(sig)
                if cmd[0] == "drop-restart":
                    for _, fd in store:
                        os.close(fd)
                    store.clear()
                if args.progress:
                    wait_gap("gap-attempt" if cmd[0] == "restart" else "gap-refusal")
                start()
            elif cmd[0] == "hup":
                since = len(events)
                os.kill(child, signal.SIGHUP)
                wait_event(lambda e: e == "RELOADING=1", since, "RELOADING=1")
                wait_event(lambda e: e == "READY=1", since, "READY=1 after a reload")
            elif cmd[0] == "stop":
                stop(signal.SIGTERM)
                event("done stop")
                sys.exit(0)
            event("done " + " ".join(cmd))
