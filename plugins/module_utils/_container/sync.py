# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The launch protocol: named messages between the parent and the container's child.

The parent (the module's process, in the host's namespaces) and the child
(the future PID 1, or the exec helper) each do the steps only they can do,
in an order the kernel imposes. They agree on that order through these
messages, one line each ("NAME payload"), over two close-on-exec pipes:

=============  ==============  ===========================================  =========================
message        sender -> to    when                                         payload
=============  ==============  ===========================================  =========================
``go``         parent -> child the child is in its cgroup and recorded;     none
                               until then it runs nothing of its own
``namespaces`` child -> parent start only: the child has unshared its       none
                               namespaces (parent-side steps that need them
                               go here: id maps, a veth, a device filter)
``configured`` parent -> child start only: the parent-side steps for the    none
                               new namespaces are done; set up the root
``exec``       child -> parent every step is done; execve follows and       namespace ids (start)
                               closes the pipes (close-on-exec)
``error``      child -> parent a step failed; the child exits 127           the sentence to show
=============  ==============  ===========================================  =========================

End of file counts as a message too. A child that reads EOF instead of
``go`` or ``configured`` exits at once (its parent died: leave nothing
behind). A parent that reads EOF without ``exec`` or ``error`` knows the
child died during set-up; EOF after ``exec`` means the exec succeeded.

Start (``launch.launch``):   fork -> [parent: cgroup, record] go -> [child:
unshare] namespaces -> [parent: its steps] configured -> [child: mounts,
pivot_root, hostname, final step] exec.

Exec (``launch.exec_in_container``):  fork -> [parent: cgroup] go ->
[helper: setns, chroot, fork; grandchild: final step] exec.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

GO = "go"
NAMESPACES = "namespaces"
CONFIGURED = "configured"
EXEC = "exec"
ERROR = "error"
EOF = None


class Channel:
    """One side's view: a pipe it reads the other side's messages from, one it writes to."""

    def __init__(self, read_fd, write_fd):
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._pending = b""

    def fds(self):
        return [fd for fd in (self.read_fd, self.write_fd) if fd is not None]

    def send(self, name, payload=""):
        # One write of less than PIPE_BUF bytes is atomic: a message never
        # interleaves with another writer's (the exec helper's grandchild).
        line = ("%s %s\n" % (name, payload.replace("\n", " "))).encode("utf-8", "replace")
        os.write(self.write_fd, line[:4095] if len(line) > 4096 else line)

    def receive(self):
        """The next message as (name, payload), or (EOF, None) once the other side is gone."""
        while b"\n" not in self._pending:
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                return EOF, None
            self._pending += chunk
        line, _newline, self._pending = self._pending.partition(b"\n")
        name, _space, payload = line.decode("utf-8", "replace").partition(" ")
        return name, payload

    def expect(self, wanted):
        """In the child: wait for ``wanted``; exit untouched if the parent is gone."""
        name, _payload = self.receive()
        if name != wanted:
            os._exit(125)

    def close_write(self):
        if self.write_fd is not None:
            os.close(self.write_fd)
            self.write_fd = None

    def close(self):
        for fd in self.fds():
            try:
                os.close(fd)
            except OSError:
                pass
        self.read_fd = self.write_fd = None


def channel_pair():
    """(parent's Channel, child's Channel), joined by two close-on-exec pipes."""
    to_child_r, to_child_w = os.pipe2(os.O_CLOEXEC)
    to_parent_r, to_parent_w = os.pipe2(os.O_CLOEXEC)
    return Channel(to_parent_r, to_child_w), Channel(to_child_r, to_parent_w)
