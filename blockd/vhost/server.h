/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vhost-user-blk frontend: for each export that asks for one (a path
 * of its own, or DIR/NAME.sock under --vhost-user-blk DIR), a listening
 * Unix socket that one VMM at a time connects to (qemu's
 * vhost-user-blk-pci, cloud-hypervisor, firecracker). The VMM shares the
 * guest's memory and hands over the virtqueues; each queue is served by
 * its own thread from its kick eventfd, requests go to the export
 * (blk.h), completions are signalled on the call eventfd.
 *
 * A device looks its export up by name when a VMM connects, as the NBD
 * server does: after `hocus-blk update` a reconnecting VMM gets the new
 * image. A VMM that goes away (socket closed) is cleaned up: queues
 * stopped, memory unmapped, the export's client released; the socket
 * stays for the next one. With inflight tracking a VMM that reconnects
 * after a blockd restart resubmits nothing: we carry out again what was
 * in flight. A guest that breaks a queue's rules gets that queue stopped
 * (logged); its other queues, and every other export, go on.
 *
 * Threading: all functions may be called from any thread except a
 * device's own.
 */
#pragma once

#include <stdbool.h>

#include "blockd/export.h"

struct vhostfe;

struct vhostfe_exports {
        /* A new reference to the export called name, or NULL. */
        struct export *(*get)(void *userdata, const char *name);
        void *userdata;
};

/* dir: where exports without a path of their own get NAME.sock (NULL:
 * only those with one are served). */
int vhostfe_new(const char *dir, const struct vhostfe_exports *x, struct vhostfe **ret);
/* Stop every device (VMMs are disconnected, sockets unlinked unless kept
 * for the next blockd). NULL is fine. */
void vhostfe_free(struct vhostfe *f);
/* Serve e (attached or updated) on its socket, if it should have one and
 * has none yet. 0 or -errno (logged). */
int vhostfe_add(struct vhostfe *f, struct export *e);
/* Disconnect e's VMM; if the export is gone from the table (detach),
 * remove its socket too. */
void vhostfe_kick_export(struct vhostfe *f, struct export *e, bool hard);
/* The socket path export name is served on (malloc'd), or NULL. */
char *vhostfe_socket_path(struct vhostfe *f, const char *name);
